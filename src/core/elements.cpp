#include "core/elements.h"

#include <cctype>
#include <algorithm>

namespace kr {
namespace {

bool is_name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

// `@Element3` and `@Image2` are fal's own references, never element names.
bool is_fal_reference(const std::string& name) {
  std::size_t digits = name.rfind("Element", 0) == 0 ? 7 : name.rfind("Image", 0) == 0 ? 5 : 0;
  return digits && name.size() > digits &&
         std::all_of(name.begin() + static_cast<long>(digits), name.end(), [](unsigned char c) { return std::isdigit(c); });
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

}  // namespace

json Element::to_fal() const {
  json j = json::object();
  if (!video.empty()) {
    j["video_url"] = video;
  } else {
    j["frontal_image_url"] = frontal;
    j["reference_image_urls"] = references;
  }
  if (!voice_id.empty()) j["voice_id"] = voice_id;
  return j;
}

bool ElementRegistry::add(Element e, Report& report, const std::string& path) {
  std::size_t before = report.errors.size();
  if (e.name.empty() || !is_name_start(e.name[0]) ||
      !std::all_of(e.name.begin(), e.name.end(), is_name_char)) {
    report.error(path + ".name", "\"" + e.name + "\" is not a usable element name (letters, digits, _ and -, starting with a letter)");
  } else if (is_fal_reference(e.name)) {
    report.error(path + ".name", "\"" + e.name + "\" would be read as fal's own @" + e.name + " reference; choose another name");
  }
  bool images = !e.frontal.empty() || !e.references.empty();
  if (images && !e.video.empty()) {
    report.error(path, "element \"" + e.name + "\" has both images and a video; an element is an image set or a video, not both");
  } else if (!images && e.video.empty()) {
    report.error(path, "element \"" + e.name + "\" needs frontal + 1–3 references, or a video");
  } else if (images) {
    if (e.frontal.empty()) report.error(path + ".frontal", "element \"" + e.name + "\" has references but no frontal image");
    if (e.references.empty())
      report.error(path + ".references", "element \"" + e.name + "\" needs at least 1 reference image besides the frontal one (fal refuses a frontal image alone)");
    if (e.references.size() > 3)
      report.error(path + ".references", std::to_string(e.references.size()) + " reference images is above the maximum of 3");
  }
  if (report.errors.size() != before) return false;
  if (auto old = by_name_.find(e.name); old != by_name_.end()) {
    const Element& o = old->second;
    bool same = o.frontal == e.frontal && o.references == e.references && o.video == e.video && o.voice_id == e.voice_id;
    if (same) return true;  // declaring the same element twice is harmless
    // Silently replacing it would change every later shot that says @name.
    report.error(path + ".name", "element \"" + e.name + "\" is already declared" + (o.origin.empty() ? "" : " at " + o.origin) +
                                     " with other media; give this one another name");
    return false;
  }
  by_name_[e.name] = std::move(e);
  return true;
}

const Element* ElementRegistry::find(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &it->second;
}

std::vector<std::string> ElementRegistry::names() const {
  std::vector<std::string> out;
  for (auto& [k, _] : by_name_) out.push_back(k);
  return out;
}

void resolve_elements(json& input, const ElementRegistry& registry, Report& report) {
  std::size_t explicit_count = 0;
  if (auto els = input.find("elements"); els != input.end() && els->is_array()) explicit_count = els->size();
  std::vector<std::string> used;  // in order of first use

  auto rewrite = [&](std::string& text, const std::string& path) {
    if (text.find('@') == std::string::npos) return;
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
      bool at_ref = text[i] == '@' && i + 1 < text.size() && is_name_start(text[i + 1]) &&
                    (i == 0 || !is_name_char(text[i - 1]));
      if (!at_ref) { out += text[i++]; continue; }
      std::size_t j = i + 1;
      while (j < text.size() && is_name_char(text[j])) ++j;
      // A trailing '-' is punctuation ("@hero-"), not part of the name.
      while (j > i + 2 && text[j - 1] == '-') --j;
      std::string name = text.substr(i + 1, j - i - 1);
      if (is_fal_reference(name)) { out += text.substr(i, j - i); i = j; continue; }
      if (!registry.find(name)) {
        report.error(path, "unknown element \"@" + name + "\" (declared elements: " + join(registry.names()) + ")");
        out += text.substr(i, j - i);
        i = j;
        continue;
      }
      auto it = std::find(used.begin(), used.end(), name);
      std::size_t index = (it == used.end()) ? (used.push_back(name), used.size()) : (it - used.begin()) + 1;
      out += "@Element" + std::to_string(explicit_count + index);
      i = j;
    }
    text = std::move(out);
  };

  if (auto it = input.find("prompt"); it != input.end() && it->is_string()) rewrite(it->get_ref<std::string&>(), "prompt");
  if (auto shots = input.find("multi_prompt"); shots != input.end() && shots->is_array()) {
    for (std::size_t k = 0; k < shots->size(); ++k) {
      json& shot = (*shots)[k];
      if (!shot.is_object()) continue;
      auto prompt = shot.find("prompt");
      if (prompt == shot.end() || !prompt->is_string()) continue;
      std::string& p = prompt->get_ref<std::string&>();
      if (p.find('@') != std::string::npos) rewrite(p, "multi_prompt[" + std::to_string(k) + "].prompt");
    }
  }
  if (used.empty()) return;
  json& els = input["elements"];
  if (!els.is_array()) els = json::array();
  for (auto& name : used) els.push_back(registry.find(name)->to_fal());
}

}  // namespace kr
