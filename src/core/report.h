// Diagnostics of a request: errors stop it, warnings only inform. Each names the field path
// (`multi_prompt[2].duration`) and a message that carries the value and the rule.
#pragma once
#include <string>
#include <vector>

namespace kr {

struct Issue {
  std::string path;     // empty for the request as a whole
  std::string message;
  std::string line() const { return path.empty() ? message : path + ": " + message; }
};

struct Report {
  std::vector<Issue> errors;
  std::vector<Issue> warnings;

  bool ok() const { return errors.empty(); }
  void error(std::string path, std::string message) { errors.push_back({std::move(path), std::move(message)}); }
  void warn(std::string path, std::string message) { warnings.push_back({std::move(path), std::move(message)}); }
  void merge(const Report& o) {
    errors.insert(errors.end(), o.errors.begin(), o.errors.end());
    warnings.insert(warnings.end(), o.warnings.begin(), o.warnings.end());
  }
  bool has_error_at(const std::string& path) const {
    for (auto& e : errors) if (e.path == path) return true;
    return false;
  }
};

}  // namespace kr
