#include "core/media.h"

#include <algorithm>
#include <fstream>
#include <string_view>
#include <vector>

#include "core/validate.h"

namespace kr {
namespace {

std::uint32_t be32(const unsigned char* p) { return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; }
std::uint16_t be16(const unsigned char* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }
std::uint64_t be64(const unsigned char* p) { return (std::uint64_t(be32(p)) << 32) | be32(p + 4); }

void image_size(const std::vector<unsigned char>& h, MediaInfo& m) {
  auto n = h.size();
  if (n >= 24 && h[0] == 0x89 && h[1] == 'P' && h[2] == 'N' && h[3] == 'G') {
    m.width = be32(&h[16]); m.height = be32(&h[20]);
  } else if (n >= 10 && h[0] == 'G' && h[1] == 'I' && h[2] == 'F') {
    m.width = h[6] | (h[7] << 8); m.height = h[8] | (h[9] << 8);
  } else if (n >= 30 && std::equal(h.begin(), h.begin() + 4, "RIFF") && std::equal(h.begin() + 8, h.begin() + 12, "WEBP")) {
    if (std::equal(h.begin() + 12, h.begin() + 16, "VP8 ")) { m.width = (h[26] | (h[27] << 8)) & 0x3fff; m.height = (h[28] | (h[29] << 8)) & 0x3fff; }
    else if (std::equal(h.begin() + 12, h.begin() + 16, "VP8L")) { std::uint32_t b = h[21] | (h[22] << 8) | (h[23] << 16) | (std::uint32_t(h[24]) << 24); m.width = (b & 0x3fff) + 1; m.height = ((b >> 14) & 0x3fff) + 1; }
    else if (std::equal(h.begin() + 12, h.begin() + 16, "VP8X")) { m.width = 1 + (h[24] | (h[25] << 8) | (h[26] << 16)); m.height = 1 + (h[27] | (h[28] << 8) | (h[29] << 16)); }
  } else if (n >= 4 && h[0] == 0xFF && h[1] == 0xD8) {
    // Walk JPEG segments to the first start-of-frame marker.
    std::size_t i = 2;
    while (i + 9 < n) {
      if (h[i] != 0xFF) { ++i; continue; }
      unsigned char marker = h[i + 1];
      if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0xFF) { ++i; continue; }
      std::uint16_t len = be16(&h[i + 2]);
      bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (sof) { m.height = be16(&h[i + 5]); m.width = be16(&h[i + 7]); return; }
      i += 2 + len;
    }
  }
}

// What one trak says about its frames: the handler ("vide" for video), the media timescale
// (mdhd) and, from the time-to-sample table (stts), how many samples span how many ticks.
struct Track {
  std::string handler;
  std::uint32_t timescale = 0;
  std::uint64_t samples = 0, ticks = 0;
};

// The box body (at most `cap` bytes), or empty when it cannot be read.
std::vector<unsigned char> body(std::ifstream& f, std::uint64_t at, std::uint64_t size, std::uint64_t cap) {
  std::vector<unsigned char> b(std::min(size, cap));
  f.seekg(static_cast<std::streamoff>(at));
  if (!f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()))) b.clear();
  return b;
}

// ISO-BMFF (mp4/mov): duration from mvhd, frame size from the first tkhd with a non-zero size,
// frame rate from the first video track's sample table.
void scan_boxes(std::ifstream& f, std::uint64_t start, std::uint64_t end, MediaInfo& m, int depth, Track* track) {
  std::uint64_t pos = start;
  while (pos + 8 <= end && depth < 6) {
    unsigned char hdr[16];
    f.seekg(static_cast<std::streamoff>(pos));
    if (!f.read(reinterpret_cast<char*>(hdr), 8)) return;
    std::uint64_t size = be32(hdr);
    std::string type(reinterpret_cast<char*>(hdr + 4), 4);
    std::uint64_t header = 8;
    if (size == 1) { if (!f.read(reinterpret_cast<char*>(hdr + 8), 8)) return; size = be64(hdr + 8); header = 16; }
    else if (size == 0) size = end - pos;
    if (size < header || pos + size > end) return;
    const std::uint64_t at = pos + header, len = size - header;
    if (type == "moov") {
      scan_boxes(f, at, pos + size, m, depth + 1, nullptr);
    } else if (type == "trak") {
      Track t;
      scan_boxes(f, at, pos + size, m, depth + 1, &t);
      if (t.handler == "vide" && m.fps == 0 && t.timescale && t.ticks) m.fps = double(t.samples) * t.timescale / double(t.ticks);
    } else if (track && (type == "mdia" || type == "minf" || type == "stbl")) {
      scan_boxes(f, at, pos + size, m, depth + 1, track);
    } else if (type == "mvhd" || type == "tkhd") {
      auto b = body(f, at, len, 128);
      if (b.empty()) return;
      bool v1 = b[0] == 1;
      if (type == "mvhd" && b.size() >= 32) {
        std::uint32_t scale = v1 ? be32(&b[20]) : be32(&b[12]);
        std::uint64_t dur = v1 ? be64(&b[24]) : be32(&b[16]);
        if (scale) m.seconds = double(dur) / scale;
      } else if (type == "tkhd" && m.width == 0) {
        std::size_t off = v1 ? 88 : 76;  // width/height are the last two 16.16 fields
        if (b.size() >= off + 8) { m.width = be32(&b[off]) >> 16; m.height = be32(&b[off + 4]) >> 16; }
      }
    } else if (track && type == "hdlr") {
      auto b = body(f, at, len, 12);
      if (b.size() == 12) track->handler.assign(reinterpret_cast<char*>(&b[8]), 4);
    } else if (track && type == "mdhd") {
      auto b = body(f, at, len, 24);
      if (!b.empty()) track->timescale = b[0] == 1 ? (b.size() >= 24 ? be32(&b[20]) : 0) : (b.size() >= 16 ? be32(&b[12]) : 0);
    } else if (track && type == "stts") {
      // (sample count, sample delta) pairs; a variable frame rate has many. Past 1 Mi entries
      // (8 MiB) the rate is left unknown rather than read.
      auto head = body(f, at, len, 8);
      if (head.size() < 8) return;
      std::uint64_t n = be32(&head[4]);
      if (n > (1u << 20) || 8 + n * 8 > len) { pos += size; continue; }
      auto table = body(f, at + 8, n * 8, n * 8);
      for (std::uint64_t i = 0; i + 8 <= table.size(); i += 8) {
        std::uint64_t count = be32(&table[i]), delta = be32(&table[i + 4]);
        track->samples += count;
        track->ticks += count * delta;
      }
    }
    pos += size;
  }
}

// By magic numbers only: the extension is the user's claim, the bytes are what fal will get.
std::string sniff_format(const std::vector<unsigned char>& h) {
  auto at = [&](std::size_t off, std::string_view s) {
    return h.size() >= off + s.size() &&
           std::equal(s.begin(), s.end(), h.begin() + off, [](char c, unsigned char b) { return static_cast<unsigned char>(c) == b; });
  };
  if (at(0, "\x89PNG\r\n\x1a\n")) return "png";
  if (h.size() >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) return "jpeg";
  if (at(0, "GIF87a") || at(0, "GIF89a")) return "gif";
  if (at(0, "RIFF") && at(8, "WEBP")) return "webp";
  if (at(0, "\x1a\x45\xdf\xa3")) return "webm";  // EBML (Matroska / WebM)
  if (at(4, "ftyp")) return at(8, "avif") || at(8, "avis") ? "avif" : "mp4";
  // QuickTime files older than ftyp start straight with a movie box.
  for (const char* box : {"moov", "mdat", "wide", "free", "skip", "pnot"})
    if (at(4, box)) return "mp4";
  return "";
}

}  // namespace

const char* format_kind(const std::string& f) {
  if (f == "png" || f == "jpeg" || f == "gif" || f == "webp" || f == "avif") return "image";
  if (f == "mp4" || f == "webm") return "video";
  return "";
}

std::string media_extension(const std::string& s) {
  std::string p = s;
  if (auto q = p.find_first_of("?#"); q != std::string::npos && is_remote_url(s)) p = p.substr(0, q);
  // Only a URL's path can carry an extension, not its host ("https://example.com").
  if (auto scheme = p.find("://"); scheme != std::string::npos && is_remote_url(s)) {
    auto path = p.find('/', scheme + 3);
    p = path == std::string::npos ? std::string() : p.substr(path);
  }
  auto slash = p.find_last_of('/');
  auto dot = p.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = p.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

std::string media_content_type(const std::string& path) {
  static const std::pair<const char*, const char*> types[] = {
      {"png", "image/png"},   {"jpg", "image/jpeg"},       {"jpeg", "image/jpeg"}, {"webp", "image/webp"},
      {"gif", "image/gif"},   {"avif", "image/avif"},      {"mp4", "video/mp4"},   {"mov", "video/quicktime"},
      {"webm", "video/webm"}, {"m4v", "video/x-m4v"}};
  std::string ext = media_extension(path);
  for (auto& [e, t] : types)
    if (ext == e) return t;
  return "application/octet-stream";
}

std::optional<MediaInfo> probe_media(const std::filesystem::path& path) {
  std::error_code ec;
  MediaInfo m;
  m.bytes = std::filesystem::file_size(path, ec);
  if (ec) return std::nullopt;
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::vector<unsigned char> head(65536);
  f.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(f.gcount()));
  m.format = sniff_format(head);
  image_size(head, m);
  if (m.width == 0 && m.format == "mp4") {
    f.clear();
    scan_boxes(f, 0, m.bytes, m, 0, nullptr);
  }
  return m;
}

}  // namespace kr
