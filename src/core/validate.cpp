#include "core/validate.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "core/text.h"

namespace kr {
namespace {

std::string idx(const std::string& base, std::size_t i) { return base + "[" + std::to_string(i) + "]"; }

// One lookup per field: `contains` then `[]` would search the object twice.
const json* get(const json& in, std::string_view key) {
  auto it = in.find(key);
  return it == in.end() ? nullptr : &*it;
}

// The top-level fields the cross-field rules read, found in the one pass over the input that
// rule 1 makes anyway (a plan validates 100,000 of these; searching the object again for
// each rule cost more than the rules).
struct Top {
  const json& in;
  const json *prompt = nullptr, *multi_prompt = nullptr, *duration = nullptr, *generate_audio = nullptr,
             *elements = nullptr, *image_urls = nullptr, *voice_ids = nullptr, *start_image_url = nullptr,
             *end_image_url = nullptr;
  const json* start = nullptr;  // the endpoint's first-frame field (start_image_url or image_url)

  void see(const std::string& name, const json& v, const Endpoint& ep) {
    using namespace std::string_view_literals;
    std::string_view n = name;
    auto is = [&](std::string_view want, const json* Top::*slot) {
      if (n == want) this->*slot = &v;
    };
    switch (n.size()) {  // the names differ in length, so one comparison each
      case 6: is("prompt"sv, &Top::prompt); break;
      case 8: is("duration"sv, &Top::duration); is("elements"sv, &Top::elements); break;
      case 9: is("voice_ids"sv, &Top::voice_ids); break;
      case 10: is("image_urls"sv, &Top::image_urls); break;
      case 12: is("multi_prompt"sv, &Top::multi_prompt); break;
      case 13: is("end_image_url"sv, &Top::end_image_url); break;
      case 14: is("generate_audio"sv, &Top::generate_audio); break;
      case 15: is("start_image_url"sv, &Top::start_image_url); break;
      default: break;
    }
    if (name == ep.start_image) start = &v;
  }
  static std::size_t size_of(const json* v) { return v && v->is_array() ? v->size() : 0; }
};

std::string type_name(const json& v) {
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "a table";
  return "null";
}

std::string show(const json& v) { return v.is_string() ? quote(v.get<std::string>()) : v.dump(); }

std::string enum_list(const std::vector<std::string>& e) {
  std::string out;
  for (auto& v : e) out += (out.empty() ? "" : ", ") + quote(v);
  return out;
}

// Rule 2 (and the per-shot half of rule 6): fal's duration is a string from an enum. `path`
// builds the field's path; it runs only when there is something to report.
template <class Path>
bool check_duration(const json& v, const std::vector<std::string>& values, Path&& path, Report& r, bool per_shot) {
  if (!v.is_string()) {
    r.error(path(), show(v) + " must be a whole number of seconds written as a string (fal's DurationEnum)");
    return false;
  }
  const std::string& s = v.get_ref<const std::string&>();
  for (auto& e : values) if (e == s) return true;
  long n = 0;
  bool numeric = !s.empty() && s.find_first_not_of("0123456789") == std::string::npos && s.size() < 6;
  if (numeric) n = std::stol(s);
  long lo = std::stol(values.front()), hi = std::stol(values.back());
  if (numeric && values.size() > 2 && n < lo)
    r.error(path(), show(v) + " is below the " + std::to_string(lo) + " s minimum" + (per_shot ? " per shot" : ""));
  else if (numeric && values.size() > 2 && n > hi)
    r.error(path(), show(v) + " is above the " + std::to_string(hi) + " s maximum" + (per_shot ? " per shot" : ""));
  else
    r.error(path(), show(v) + " is not one of " + enum_list(values));
  return false;
}

// Field-level checks from the catalog entry (types, enums, ranges, lengths).
void check_field(const std::string& name, const json& v, const FieldSpec& spec, Report& r) {
  using T = FieldSpec::Type;
  switch (spec.type) {
    case T::string: {
      if (!v.is_string()) { r.error(name, "must be a string, got " + type_name(v) + " " + show(v)); return; }
      const std::string& s = v.get_ref<const std::string&>();
      if (!spec.enums.empty()) {
        if (std::find(spec.enums.begin(), spec.enums.end(), s) == spec.enums.end()) {
          std::string hint = spec.value_hints ? spec.value_hints->value(s, "") : "";
          r.error(name, show(v) + " is not one of " + enum_list(spec.enums) + (hint.empty() ? "" : " — " + hint));
        } else if (spec.warn_values) {
          if (const json* w = get(*spec.warn_values, s)) r.warn(name, w->get<std::string>());
        }
      }
      if (spec.max_length && utf8_length(s) > spec.max_length)
        r.error(name, std::to_string(utf8_length(s)) + " characters is above the " + std::to_string(spec.max_length) + "-character limit");
      return;
    }
    case T::number: {
      if (!v.is_number() || v.is_boolean()) { r.error(name, "must be a number, got " + type_name(v) + " " + show(v)); return; }
      double d = v.get<double>();
      if (d < spec.min || d > spec.max)
        r.error(name, v.dump() + " is outside the range " + (*spec.raw)["min"].dump() + " … " + (*spec.raw)["max"].dump());
      return;
    }
    case T::boolean:
      if (!v.is_boolean()) r.error(name, "must be true or false, got " + type_name(v) + " " + show(v));
      return;
    case T::duration:
      check_duration(v, spec.enums, [&] { return name; }, r, false);
      return;
    case T::url:
      if (!v.is_string() || v.get_ref<const std::string&>().empty()) r.error(name, "must be a non-empty URL or file path, got " + show(v));
      return;
    case T::url_list:
    case T::string_list: {
      if (!v.is_array()) { r.error(name, "must be a list, got " + type_name(v)); return; }
      for (std::size_t i = 0; i < v.size(); ++i)
        if (!v[i].is_string() || v[i].get_ref<const std::string&>().empty())
          r.error(idx(name, i), "must be a non-empty " + std::string(spec.type == T::url_list ? "URL or file path" : "string") + ", got " + show(v[i]));
      if (spec.max_items && v.size() > spec.max_items)
        r.error(name, std::to_string(v.size()) + " entries is above the maximum of " + std::to_string(spec.max_items));
      return;
    }
    case T::multi_prompt:
    case T::elements:
      if (!v.is_array()) r.error(name, "must be a list, got " + type_name(v));
      return;
  }
}

bool nonempty_string(const json& in, const char* k) {
  const json* v = get(in, k);
  return v && v->is_string() && !v->get_ref<const std::string&>().empty();
}

// generate_audio as written: `absent` when missing; nullopt when not a boolean (check_field names that).
std::optional<bool> audio_flag(const Top& in, bool absent) {
  const json* v = in.generate_audio;
  if (!v) return absent;
  if (!v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

// Rules 3/4: which of prompt and multi_prompt must be present.
void check_prompt_presence(const Endpoint& ep, const Top& in, Report& r) {
  const json* prompt = in.prompt;
  const json* shots = in.multi_prompt;
  bool has_prompt = prompt, has_shots = shots;
  if (has_prompt && prompt->is_string() && prompt->get_ref<const std::string&>().empty())
    r.error("prompt", "is empty; write what the video should show");
  if (ep.prompt_required) {
    if (!has_prompt) r.error("prompt", "is required on " + ep.short_id);
    return;
  }
  if (has_prompt && has_shots) {
    r.error("multi_prompt", "prompt and multi_prompt were both given; fal takes exactly one of them (fold the common text into the first shot)");
  } else if (!has_prompt && !has_shots) {
    r.error("prompt", "neither prompt nor multi_prompt was given; " + ep.short_id + " needs exactly one of them");
  } else if (has_shots && shots->is_array() && shots->empty()) {
    r.error("multi_prompt", "is an empty list; give at least one shot, or use prompt");
  }
}

// Rules 6–9: the shots of a multi-shot video.
void check_shots(const Endpoint& ep, const Top& in, const Catalog& cat, Report& r) {
  const json* list = in.multi_prompt;
  if (!list || !list->is_array() || !ep.duration) return;
  const json& shots = *list;
  const std::size_t max_chars = static_cast<std::size_t>(cat.shot_prompt_max());
  long total = 0;
  bool summable = true;
  for (std::size_t i = 0; i < shots.size(); ++i) {
    auto base = [&] { return idx("multi_prompt", i); };
    const json& s = shots[i];
    if (!s.is_object()) { r.error(base(), "must be a table {prompt=..., duration=...}, got " + type_name(s)); summable = false; continue; }
    for (auto& [k, _] : s.items())
      if (k != "prompt" && k != "duration") r.error(base() + "." + k, "is not a field of a shot (a shot has prompt and duration)");
    const json* prompt = get(s, "prompt");
    if (!prompt) r.error(base() + ".prompt", "is required: every shot needs its own prompt");
    else if (!prompt->is_string()) r.error(base() + ".prompt", "must be a string, got " + type_name(*prompt));
    else if (prompt->get_ref<const std::string&>().empty()) r.error(base() + ".prompt", "is empty");
    else if (std::size_t n = utf8_length(prompt->get_ref<const std::string&>()); n > max_chars)
      r.error(base() + ".prompt", std::to_string(n) + " characters is above the " + std::to_string(max_chars) + "-character limit per shot");
    if (const json* d = get(s, "duration")) {
      if (check_duration(*d, ep.duration->enums, [&] { return base() + ".duration"; }, r, true)) total += std::stol(d->get_ref<const std::string&>());
      else summable = false;
    } else {
      total += 5;  // fal's per-shot default
    }
  }
  // Rule 9: UNCONFIRMED for fal (6 is Kling's product number); kept as its own check.
  if (shots.size() > cat.max_shots())
    r.error("multi_prompt", std::to_string(shots.size()) + " shots is above the maximum of " + std::to_string(cat.max_shots()));
  // Rule 8 (inferred from a third-party 422 report): shot durations must add up to duration.
  const json* duration = in.duration;
  if (summable && !shots.empty() && duration && duration->is_string() && !r.has_error_at("duration")) {
    long want = 0;
    try { want = std::stol(duration->get_ref<const std::string&>()); } catch (...) { return; }
    if (want != total)
      r.error("multi_prompt", "shot durations add up to " + std::to_string(total) + " s but duration is \"" +
                                  duration->get_ref<const std::string&>() + "\"; they must be equal (omit duration to use the sum)");
  }
}

// Rules 15–16: start and end frames.
void check_frames(const Endpoint& ep, const Top& in, Report& r) {
  const std::string& start = ep.start_image;
  if (!start.empty() && !in.start) {
    std::string hint;
    if (start == "start_image_url" && in.in.contains("image_url")) hint = " (this endpoint calls it start_image_url, not image_url)";
    if (start == "image_url" && in.start_image_url) hint = " (this endpoint calls it image_url, not start_image_url)";
    r.error(start, "is required on " + ep.short_id + ": the first frame of the video" + hint);
  }
  // Upstream (K-OMNI) rule, inferred for fal: on O3 R2V an end frame needs a start frame.
  if (ep.end_needs_start && in.end_image_url && !in.start_image_url)
    r.error("end_image_url", "an end frame needs a start frame on " + ep.short_id + " (set start_image_url too)");
  // Kling's own limits for reference-to-video (K-OMNI), UNCONFIRMED on fal: warnings only.
  if (ep.end_needs_start) {
    std::size_t images = Top::size_of(in.image_urls);
    std::size_t subjects = images + Top::size_of(in.elements);
    bool frames = in.start_image_url || in.end_image_url;
    if (frames && subjects > 3)
      r.warn("elements", std::to_string(subjects) + " elements + image_urls with a first/last frame: Kling allows at most 3 subjects then (UNCONFIRMED on fal)");
    if (in.end_image_url && images > 2)
      r.warn("end_image_url", "Kling does not support an end frame with more than 2 reference images (UNCONFIRMED on fal)");
  }
}

// Rules 17–20, 23 (element half): the elements array.
void check_elements(const Endpoint& ep, const Top& in, Report& r) {
  // No "elements" entry in the catalog: rule 1 already refused the field.
  if (!ep.element_rules) return;
  // Without elements there are still image_urls to count (rule 20, O3 R2V).
  static const json no_elements = json::array();
  const json& els = in.elements && in.elements->is_array() ? *in.elements : no_elements;
  const json& rules = *ep.element_rules;
  const std::string& voice_field = ep.voice_field;
  std::optional<bool> audio = audio_flag(in, false);
  int videos = 0, voices = 0;
  for (std::size_t i = 0; i < els.size(); ++i) {
    std::string base = idx("elements", i);
    const json& e = els[i];
    if (!e.is_object()) { r.error(base, "must be a table, got " + type_name(e)); continue; }
    for (auto& [k, _] : e.items()) {
      if (k != "frontal_image_url" && k != "reference_image_urls" && k != "video_url" && k != voice_field)
        r.error(base + "." + k, "is not a field of an element (frontal_image_url + reference_image_urls, or video_url" +
                                    std::string(voice_field.empty() ? "" : ", and " + voice_field) + ")");
    }
    bool images = e.contains("frontal_image_url") || e.contains("reference_image_urls");
    bool video = e.contains("video_url");
    if (images && video) r.error(base, "has both images and video_url; an element is an image set or a video, not both");
    else if (!images && !video) r.error(base, "needs frontal_image_url + reference_image_urls, or video_url");
    else if (images) {
      if (!nonempty_string(e, "frontal_image_url")) r.error(base + ".frontal_image_url", "is required for an image element");
      if (!e.contains("reference_image_urls")) {
        r.error(base + ".reference_image_urls", "is required: 1–3 reference images besides the frontal one (fal refuses a frontal image alone)");
      } else if (!e["reference_image_urls"].is_array()) {
        r.error(base + ".reference_image_urls", "must be a list of 1–3 URLs");
      } else {
        auto& refs = e["reference_image_urls"];
        if (refs.empty()) r.error(base + ".reference_image_urls", "is empty; at least 1 reference image is required");
        if (refs.size() > 3) r.error(base + ".reference_image_urls", std::to_string(refs.size()) + " images is above the maximum of 3");
        for (std::size_t k = 0; k < refs.size(); ++k)
          if (!refs[k].is_string() || refs[k].get<std::string>().empty()) r.error(idx(base + ".reference_image_urls", k), "must be a non-empty URL or file path");
      }
    } else if (!nonempty_string(e, "video_url")) {
      r.error(base + ".video_url", "must be a non-empty URL or file path");
    }
    if (video) ++videos;
    if (!voice_field.empty() && e.contains(voice_field)) {
      ++voices;
      // Rule 23: confirmed (S2) that binding a voice to an image element is refused.
      if (!video) r.error(base + "." + voice_field, "a voice can only be bound to a video element; element " + std::to_string(i + 1) + " is an image set");
      // Inferred: voice is priced "if used while generating audio"; refuse it with audio off.
      if (audio == false) r.error(base + "." + voice_field, "a bound voice needs generate_audio = true");
    }
  }
  // Rule 19 (confirmed by fal's field text).
  if (videos > 1) r.error("elements", std::to_string(videos) + " elements have a video_url; a request can only have one element with a video");
  // Inferred from rule 19: one video element → at most one bound voice on V3.
  if (voices > 1) r.error("elements", std::to_string(voices) + " voices are bound; at most one element can carry a voice");
  // Rule 20: counts. V3 I2V ≤ 4 is UNCONFIRMED (one third-party 422); suggested policy applied.
  if (rules.contains("max") && els.size() > rules["max"].get<std::size_t>())
    r.error("elements", std::to_string(els.size()) + " elements is above the maximum of " + rules["max"].dump() + " (UNCONFIRMED limit reported for " + ep.short_id + ")");
  if (rules.contains("warn_at_with_end_image") && els.size() == rules["warn_at_with_end_image"].get<std::size_t>() && in.end_image_url)
    r.warn("elements", std::to_string(els.size()) + " elements with an end frame: Kling allows at most 3 subjects with first/last frames (UNCONFIRMED on fal)");
  if (rules.contains("max_with_video")) {
    std::size_t images = Top::size_of(in.image_urls);
    std::size_t n = els.size() + images;
    if (videos > 0 && n > rules["max_with_video"].get<std::size_t>())
      r.error("elements", std::to_string(els.size()) + " elements + " + std::to_string(images) + " image_urls = " + std::to_string(n) +
                              " is above the maximum of " + rules["max_with_video"].dump() + " when an element has a video");
    else if (videos == 0 && n > rules["max_without_video"].get<std::size_t>())
      r.error(els.empty() ? "image_urls" : "elements", std::to_string(els.size()) + " elements + " + std::to_string(images) + " image_urls = " + std::to_string(n) +
                              " is above the maximum of " + rules["max_without_video"].dump() + " (Kling's own limit; UNCONFIRMED on fal)");
  }
}

enum class RefKind { element, image, voice };

// Finds `@ElementN`, `@ImageN` and `<<<voice_N>>>` in a prompt (a hand-written scan: this runs
// for every shot of every plan, and std::regex costs more than the rest of validation).
template <class Fn>
void for_each_reference(const std::string& text, Fn&& fn) {
  auto digits = [&](std::size_t from, std::size_t& end) {
    end = from;
    while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
    return end > from && end - from < 9 ? std::stoul(text.substr(from, end - from)) : std::string::npos;
  };
  auto next = [&](std::size_t from) {  // find_first_of calls memchr once per character
    for (std::size_t k = from; k < text.size(); ++k)
      if (text[k] == '@' || text[k] == '<') return k;
    return std::string::npos;
  };
  for (std::size_t i = next(0); i != std::string::npos; i = next(i + 1)) {
    std::size_t end = 0, n = 0;
    if (text.compare(i, 8, "@Element") == 0) {
      if ((n = digits(i + 8, end)) != std::string::npos) fn(RefKind::element, n, std::string_view(text).substr(i, end - i));
    } else if (text.compare(i, 6, "@Image") == 0) {
      if ((n = digits(i + 6, end)) != std::string::npos) fn(RefKind::image, n, std::string_view(text).substr(i, end - i));
    } else if (text.compare(i, 9, "<<<voice_") == 0) {
      if ((n = digits(i + 9, end)) != std::string::npos && text.compare(end, 3, ">>>") == 0)
        fn(RefKind::voice, n, std::string_view(text).substr(i, end + 3 - i));
    }
  }
}

// Rules 22–23: references written inside prompts.
void check_references(const Endpoint& ep, const Top& in, Report& r) {
  std::size_t n_el = Top::size_of(in.elements);
  std::size_t n_img = Top::size_of(in.image_urls);
  std::size_t n_voice = Top::size_of(in.voice_ids);
  std::vector<bool> used_elements(n_el + 1, false);
  auto scan = [&](const std::string& text, auto&& path) {
    if (std::none_of(text.begin(), text.end(), [](char c) { return c == '@' || c == '<'; })) return;  // the usual prompt
    for_each_reference(text, [&](RefKind kind, std::size_t n, std::string_view what_sv) {
      std::string what(what_sv);
      if (kind == RefKind::voice) {
        if (!ep.has("voice_ids")) r.error(path(), what + " is used but " + ep.short_id + " takes no voice_ids");
        else if (n < 1 || n > n_voice) r.error(path(), what + " refers to voice " + std::to_string(n) + " but voice_ids has " + std::to_string(n_voice));
        return;
      }
      bool element = kind == RefKind::element;
      if (element && !ep.has("elements")) {
        r.error(path(), what + " is used but " + ep.short_id + " takes no elements (elements exist on V3 image-to-video and O3 reference-to-video)");
      } else if (!element && !ep.has("image_urls")) {
        r.error(path(), what + " is used but " + ep.short_id + " takes no image_urls (only O3 reference-to-video does)");
      } else if (n < 1 || n > (element ? n_el : n_img)) {
        r.error(path(), what + " refers to " + (element ? "element " : "image ") + std::to_string(n) + " but the request has " +
                            std::to_string(element ? n_el : n_img) + (element ? " elements" : " image_urls"));
      } else if (element) {
        used_elements[n] = true;
      }
    });
  };
  if (const json* p = in.prompt; p && p->is_string()) scan(p->get_ref<const std::string&>(), [] { return std::string("prompt"); });
  if (const json* shots = in.multi_prompt; shots && shots->is_array())
    for (std::size_t i = 0; i < shots->size(); ++i) {
      auto& s = (*shots)[i];
      if (!s.is_object()) continue;
      if (const json* p = get(s, "prompt"); p && p->is_string())
        scan(p->get_ref<const std::string&>(), [&] { return idx("multi_prompt", i) + ".prompt"; });
    }
  for (std::size_t i = 1; i <= n_el; ++i)
    if (!used_elements[i]) r.warn(idx("elements", i - 1), "element " + std::to_string(i) + " is never referenced as @Element" + std::to_string(i) + " in a prompt");
}

// Rule 23 (top-level voices, v2.6 I2V).
void check_voice_ids(const Top& in, Report& r) {
  if (Top::size_of(in.voice_ids) == 0) return;
  if (audio_flag(in, true) == false) r.error("voice_ids", "voices need generate_audio = true");
}

}  // namespace

Report validate(const Endpoint& ep, const json& in, const Catalog& cat) {
  Report r;
  if (!in.is_object()) {
    r.error("", "the input must be a table of fal fields, got " + type_name(in));
    return r;
  }
  // Rule 1: unknown fields are errors, with a hint for the usual mix-ups. The input's keys and
  // the endpoint's fields are both sorted: one merged walk finds each field's spec.
  Top top{in};
  auto field = ep.fields.begin();
  for (auto& [name, value] : in.get_ref<const json::object_t&>()) {
    top.see(name, value, ep);
    while (field != ep.fields.end() && field->name < name) ++field;
    const FieldSpec* spec = field != ep.fields.end() && field->name == name ? &*field : nullptr;
    if (!spec) {
      std::string hint = cat.hint(name);
      if (name == "image_url" && ep.has("start_image_url")) hint = "this endpoint calls its first frame start_image_url";
      if (name == "start_image_url" && ep.has("image_url")) hint = "this endpoint calls its first frame image_url";
      if (name == "tail_image_url" && ep.has("end_image_url")) hint = "this endpoint calls its last frame end_image_url";
      if (name == "end_image_url" && ep.has("tail_image_url")) hint = "this endpoint calls its last frame tail_image_url";
      r.error(name, "is not a field of " + ep.short_id + (hint.empty() ? "" : " (" + hint + ")"));
      continue;
    }
    check_field(name, value, *spec, r);
  }
  check_prompt_presence(ep, top, r);
  check_shots(ep, top, cat, r);
  check_frames(ep, top, r);
  check_elements(ep, top, r);
  check_references(ep, top, r);
  check_voice_ids(top, r);
  check_media(ep, in, cat, r);
  return r;
}

}  // namespace kr
