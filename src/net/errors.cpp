#include "net/errors.h"

#include <nlohmann/json.hpp>

namespace kr::net {

using json = nlohmann::json;

const char* kind_name(FalError::Kind k) {
  switch (k) {
    case FalError::Kind::auth: return "auth";
    case FalError::Kind::rejected: return "rejected";
    case FalError::Kind::rate_limited: return "rate_limited";
    case FalError::Kind::server: return "server";
    case FalError::Kind::network: return "network";
    case FalError::Kind::timeout: return "timeout";
    case FalError::Kind::cancelled: return "cancelled";
    case FalError::Kind::unknown_submit: return "unknown_submit";
    case FalError::Kind::download: return "download";
  }
  return "?";
}

std::vector<std::string> FalError::lines() const {
  std::vector<std::string> out;
  for (const auto& d : details) out.push_back(d.path.empty() ? d.message : d.path + ": " + d.message);
  if (out.empty()) out.push_back(message);
  return out;
}

std::string FalError::describe() const {
  std::string s = kind_name(kind);
  if (http_status || !error_type.empty()) {
    s += " (";
    if (http_status) s += std::to_string(http_status);
    if (http_status && !error_type.empty()) s += ", ";
    s += error_type;
    s += ")";
  }
  s += ": " + message;
  if (!request_id.empty()) s += " [request " + request_id + "]";
  return s;
}

std::string loc_to_path(const json& loc) {
  if (!loc.is_array()) return loc.is_string() ? loc.get<std::string>() : std::string{};
  std::string path;
  bool first = true;
  for (const auto& part : loc) {
    if (first && part.is_string() && part.get<std::string>() == "body") {
      first = false;
      continue;
    }
    first = false;
    if (part.is_number_integer()) {
      path += "[" + std::to_string(part.get<long long>()) + "]";
    } else if (part.is_string()) {
      if (!path.empty()) path += ".";
      path += part.get<std::string>();
    } else {
      if (!path.empty()) path += ".";
      path += part.dump();
    }
  }
  return path;
}

std::vector<FieldError> parse_detail(const json& detail) {
  std::vector<FieldError> out;
  if (detail.is_string()) {
    out.push_back({"", detail.get<std::string>(), ""});
  } else if (detail.is_array()) {
    for (const auto& d : detail) {
      if (!d.is_object()) {
        out.push_back({"", d.is_string() ? d.get<std::string>() : d.dump(), ""});
        continue;
      }
      FieldError fe;
      if (d.contains("loc")) fe.path = loc_to_path(d["loc"]);
      if (auto it = d.find("msg"); it != d.end()) fe.message = it->is_string() ? it->get<std::string>() : it->dump();
      else if (auto m = d.find("message"); m != d.end() && m->is_string()) fe.message = m->get<std::string>();
      if (auto t = d.find("type"); t != d.end() && t->is_string()) fe.type = t->get<std::string>();
      out.push_back(std::move(fe));
    }
  } else if (detail.is_object()) {
    // Not a documented shape, but keep whatever text it has rather than nothing.
    out.push_back({"", detail.value("msg", detail.dump()), detail.value("type", "")});
  }
  return out;
}

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
  }
  return "HTTP error";
}

std::string header(const Headers& h, const char* name) {
  auto it = h.find(name);
  return it == h.end() ? std::string{} : it->second;
}

bool truthy(const std::string& v) {
  return v == "1" || v == "true" || v == "True" || v == "TRUE" || v == "yes";
}

}  // namespace

FalError error_from_http(int status, const Headers& headers, std::string_view body,
                         std::string request_id) {
  FalError e;
  e.http_status = status;
  e.request_id = request_id.empty() ? header(headers, "x-fal-request-id") : std::move(request_id);
  e.error_type = header(headers, "x-fal-error-type");

  json j = json::parse(body.begin(), body.end(), nullptr, false);
  std::string summary;
  if (j.is_object()) {
    if (auto it = j.find("error_type"); it != j.end() && it->is_string()) e.error_type = it->get<std::string>();
    if (auto it = j.find("detail"); it != j.end()) {
      e.details = parse_detail(*it);
      if (it->is_string()) summary = it->get<std::string>();
    }
    if (summary.empty()) {
      if (auto it = j.find("message"); it != j.end() && it->is_string()) summary = it->get<std::string>();
      else if (auto st = j.find("status"); st != j.end() && st->is_string()) summary = st->get<std::string>();
      else if (auto er = j.find("error"); er != j.end() && er->is_string()) summary = er->get<std::string>();
    }
  } else if (!body.empty() && body.size() < 300) {
    summary = std::string(body);
    while (!summary.empty() && (summary.back() == '\n' || summary.back() == '\r')) summary.pop_back();
  }
  if (summary.empty()) {
    summary = "HTTP " + std::to_string(status) + " " + reason_phrase(status);
    if (e.details.size() == 1) summary += ": " + e.lines().front();
  }
  e.message = summary;

  const bool user_timeout = status == 504 && header(headers, "x-fal-request-timeout-type") == "user";
  if (status == 401 || status == 403) {
    e.kind = FalError::Kind::auth;
  } else if (status == 429) {
    e.kind = FalError::Kind::rate_limited;
    e.retryable = true;
  } else if (status == 499 || e.error_type == "client_cancelled") {
    e.kind = FalError::Kind::cancelled;
  } else if (user_timeout) {
    // fal's start deadline (x-fal-request-timeout) passed: a timeout the caller asked for.
    e.kind = FalError::Kind::timeout;
    if (e.error_type.empty()) e.error_type = "request_timeout";
  } else if (status >= 500) {
    e.kind = FalError::Kind::server;
    e.retryable = true;
  } else {
    e.kind = FalError::Kind::rejected;
  }
  if (auto r = header(headers, "x-fal-retryable"); !r.empty()) e.retryable = truthy(r);
  else if (auto r2 = header(headers, "x-fal-needs-retry"); !r2.empty()) e.retryable = truthy(r2);
  return e;
}

FalError error_from_completed_status(const json& status, std::string request_id) {
  FalError e;
  e.request_id = std::move(request_id);
  if (auto it = status.find("error"); it != status.end())
    e.message = it->is_string() ? it->get<std::string>() : it->dump();
  if (auto it = status.find("error_type"); it != status.end() && it->is_string())
    e.error_type = it->get<std::string>();
  if (e.message.empty()) e.message = "job completed with an error";
  if (e.error_type == "client_cancelled" || e.error_type == "client_disconnected") {
    e.kind = FalError::Kind::cancelled;
  } else if (e.error_type == "request_timeout" || e.error_type == "startup_timeout") {
    e.kind = FalError::Kind::timeout;
  } else {
    e.kind = FalError::Kind::server;
    e.retryable = e.error_type.rfind("runner_", 0) == 0;
  }
  return e;
}

}  // namespace kr::net
