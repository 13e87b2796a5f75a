// Named elements (consistent characters/objects). A script registers `hero` once; any prompt or
// shot prompt may then say `@hero`. The request's `elements` array is built from the names it
// uses, in order of first use, and `@hero` becomes `@ElementN`. Hand-written `@Element1` and an
// explicit `elements` array keep working: named elements are appended after explicit ones.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/report.h"
#include "core/request.h"

namespace kr {

struct Element {
  std::string name;
  std::string frontal;                  // image set: frontal + 1–3 references
  std::vector<std::string> references;
  std::string video;                    // or a video
  std::string voice_id;                 // optional voice bound to the element
  std::string origin;                   // where it was declared, for messages

  json to_fal() const;                  // KlingV3ComboElementInput
};

class ElementRegistry {
 public:
  // Checks the element's own shape (rule 18) and its name; on failure returns false and fills
  // `report` with errors under `path`.
  bool add(Element e, Report& report, const std::string& path = "element");
  const Element* find(const std::string& name) const;
  std::vector<std::string> names() const;
  bool empty() const { return by_name_.empty(); }

 private:
  std::map<std::string, Element> by_name_;
};

// Rewrites `@name` in `prompt` and `multi_prompt[*].prompt` and appends the used elements to
// `input.elements`. Unknown names are errors naming them; `@ElementN`/`@ImageN` are left alone.
void resolve_elements(json& input, const ElementRegistry& registry, Report& report);

}  // namespace kr
