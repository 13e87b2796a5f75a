// Rule 24 of docs/validation.md#r24: limits of the media a request points at.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "core/media.h"
#include "core/text.h"
#include "core/validate.h"

namespace kr {
namespace {

std::string mb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  return buf;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// A frame rate as people write it: "24", "23.976", "59.94".
std::string fps_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  std::string s = buf;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string format_name(const std::string& f) {
  if (f == "jpeg") return "a JPEG image";
  if (f == "mp4") return "an MP4/MOV video";
  if (f == "webm") return "a WebM video";
  std::string up = f;
  std::transform(up.begin(), up.end(), up.begin(), [](unsigned char c) { return std::toupper(c); });
  return (f == "avif" ? "an " : "a ") + up + " image";
}

// The format a file of this extension should hold ("" for extensions not tied to one).
std::string format_of_extension(const std::string& ext) {
  if (ext == "jpg" || ext == "jpeg") return "jpeg";
  if (ext == "mov" || ext == "m4v" || ext == "mp4") return "mp4";
  if (ext == "png" || ext == "gif" || ext == "webp" || ext == "avif" || ext == "webm") return ext;
  return "";
}

void check_one(const std::string& value, const std::string& kind, const std::string& path, const json& limits, Report& r) {
  std::string ext = media_extension(value);
  bool remote = is_remote_url(value);
  if (value.rfind("data:", 0) == 0) return;  // inline data: fal decodes it; nothing cheap to check
  auto listed = [&](const char* key, const std::string& e) {
    for (auto& x : limits[key]) if (x == e) return true;
    return false;
  };
  if (!ext.empty() && !listed("extensions", ext)) {
    r.error(path, "." + ext + " is not an accepted " + kind + " type (" + limits["extensions"].dump() + ")");
  } else if (!ext.empty() && listed("warn_extensions", ext)) {
    // docs/validation.md#r24: listed by fal's playground, UNCONFIRMED on every endpoint.
    r.warn(path, "." + ext + " " + kind + "s are accepted by fal's upload form but UNCONFIRMED on every endpoint; prefer " +
                     (kind == "image" ? "jpg or png" : "mp4 or mov"));
  } else if (!remote && ext.empty()) {
    r.warn(path, "has no file extension; fal may not recognise the " + kind + " type");
  }
  if (remote) return;

  const std::string local = local_media_path(value);
  auto info = probe_media(local);
  if (!info) { r.error(path, "file " + quote(local, 80) + " not found or unreadable"); return; }
  // The extension is only a name: a text file called frame.png would be uploaded, paid for in
  // time, and refused by fal.
  const std::string& found = info->format;
  const bool image = kind == "image";
  const std::string found_kind = format_kind(found);
  if (found_kind != kind && !(!image && found == "gif")) {  // an animated GIF may stand for a video
    const std::string a_kind = image ? "an image" : "a video";
    const std::string what = found.empty() ? " is not " + a_kind + " klingrun recognises"
                                           : " holds " + format_name(found) + ", not " + a_kind;
    r.error(path, quote(local, 60) + what + " (its first bytes are not those of " +
                      (image ? "PNG, JPEG, WebP, GIF or AVIF" : "MP4, MOV, WebM or GIF") + ")");
    return;
  }
  if (std::string named = format_of_extension(ext); !named.empty() && named != found)
    r.warn(path, quote(local, 60) + " holds " + format_name(found) + " but is named ." + ext + "; fal may go by either");
  double max_bytes = limits["max_bytes"].get<double>();
  if (info->bytes > max_bytes) r.error(path, quote(local, 60) + " is " + mb(double(info->bytes)) + ", above the " + mb(max_bytes) + " limit for " + kind + "s");
  int w = info->width, h = info->height;
  if (kind == "image" && found != "avif" && (w <= 0 || h <= 0))
    r.warn(path, quote(local, 60) + ": its size could not be read from its header (a damaged file?), so fal's limits on it were not checked");
  if (w > 0 && h > 0) {
    std::string size = std::to_string(w) + "×" + std::to_string(h);
    if (kind == "image") {
      int min_side = limits["min_side"];
      double aspect = double(w) / h;
      if (std::min(w, h) < min_side) r.error(path, quote(local, 60) + " is " + size + "; both sides must be at least " + std::to_string(min_side) + " px");
      if (aspect < limits["min_aspect"].get<double>() || aspect > limits["max_aspect"].get<double>())
        r.error(path, quote(local, 60) + " is " + size + " (width/height " + fmt(aspect) + "); it must be between " + fmt(limits["min_aspect"]) + " and " + fmt(limits["max_aspect"]));
    } else {
      int lo = limits["min_side"], hi = limits["max_side"];
      if (std::min(w, h) < lo || std::max(w, h) > hi)
        r.error(path, quote(local, 60) + " is " + size + "; each side must be " + std::to_string(lo) + "–" + std::to_string(hi) + " px");
    }
  }
  if (kind == "video" && info->seconds > 0) {
    double lo = limits["min_seconds"], hi = limits["max_seconds"];
    if (info->seconds < lo || info->seconds > hi)
      r.error(path, quote(local, 60) + " lasts " + fmt(info->seconds) + " s; element videos must last " + fmt(lo) + "–" + fmt(hi) + " s");
  }
  if (kind == "video" && info->fps > 0) {
    // The average rate of the video track (its sample table). fal's field text gives 24–60 fps;
    // whether fal takes NTSC's 23.976 as 24 is UNCONFIRMED, so a rate within 1% of a limit is
    // a warning, and only one clearly outside is an error.
    double lo = limits["min_fps"], hi = limits["max_fps"], fps = info->fps;
    std::string rule = "; element videos must be " + fps_text(lo) + "–" + fps_text(hi) + " fps";
    if (fps < lo * 0.99 || fps > hi * 1.01) r.error(path, quote(local, 60) + " runs at " + fps_text(fps) + " fps" + rule);
    else if (fps < lo || fps > hi) r.warn(path, quote(local, 60) + " runs at " + fps_text(fps) + " fps" + rule + " (UNCONFIRMED whether fal rounds it)");
  }
}

}  // namespace

bool is_remote_url(const std::string& s) {
  return s.rfind("http://", 0) == 0 || s.rfind("https://", 0) == 0 || s.rfind("data:", 0) == 0;
}

std::string local_media_path(const std::string& value) {
  if (is_remote_url(value)) return {};
  return value.rfind("file://", 0) == 0 ? value.substr(7) : value;
}

void for_each_media(const Endpoint& ep, json& in,
                    const std::function<void(json& value, const std::string& kind, const std::string& path)>& fn) {
  auto visit = [&](json& v, const std::string& kind, const std::string& path) {
    if (v.is_string() && !v.get_ref<const std::string&>().empty()) fn(v, kind, path);
  };
  for (const FieldSpec* f : ep.media_fields) {
    auto it = in.find(f->name);
    if (it == in.end()) continue;
    json& v = *it;
    visit(v, f->media, f->name);
    if (v.is_array())
      for (std::size_t i = 0; i < v.size(); ++i) visit(v[i], f->media, f->name + "[" + std::to_string(i) + "]");
  }
  auto els = in.find("elements");
  if (els == in.end() || !els->is_array()) return;
  static const std::string image = "image", video = "video";
  for (std::size_t i = 0; i < els->size(); ++i) {
    json& e = (*els)[i];
    if (!e.is_object()) continue;
    std::string base = "elements[" + std::to_string(i) + "]";
    if (auto f = e.find("frontal_image_url"); f != e.end()) visit(*f, image, base + ".frontal_image_url");
    if (auto refs = e.find("reference_image_urls"); refs != e.end() && refs->is_array())
      for (std::size_t k = 0; k < refs->size(); ++k)
        visit((*refs)[k], image, base + ".reference_image_urls[" + std::to_string(k) + "]");
    if (auto v = e.find("video_url"); v != e.end()) visit(*v, video, base + ".video_url");
  }
}

void check_media(const Endpoint& ep, const json& in, const Catalog& cat, Report& r) {
  // for_each_media could rewrite; this visitor only reads, so the input stays as it was.
  for_each_media(ep, const_cast<json&>(in), [&](json& v, const std::string& kind, const std::string& path) {
    check_one(v.get<std::string>(), kind, path, cat.media()[kind], r);
  });
}

}  // namespace kr
