#pragma once
// fal endpoint ids, app ids and the URLs built from them (docs/fal-protocol.md#ids). Status, result and
// cancel URLs are always built here from the configured base, never taken from an answer, so
// the API key only ever goes to the configured hosts.

#include <string>
#include <string_view>

#include "net/fal_config.h"

namespace kr::net {

struct EndpointId {
  std::string ns;     // "workflows", "comfy" or empty
  std::string owner;
  std::string alias;
  std::string path;   // the rest after owner/alias, without leading '/'; may be empty

  // "[ns/]owner/alias": what status, result and cancel use.
  std::string app_id() const;
  // The full id as given (normalised): what submit uses.
  std::string full() const;
};

// Throws std::invalid_argument for ids that are neither owner/alias[/path] nor legacy
// "<digits>-<name>".
EndpointId parse_endpoint_id(std::string_view id);

namespace fal_url {
std::string submit(const FalConfig& c, const EndpointId& e);
std::string status(const FalConfig& c, const EndpointId& e, std::string_view request_id, bool logs);
std::string status_stream(const FalConfig& c, const EndpointId& e, std::string_view request_id, bool logs);
std::string result(const FalConfig& c, const EndpointId& e, std::string_view request_id);
std::string cancel(const FalConfig& c, const EndpointId& e, std::string_view request_id);
std::string upload_initiate(const FalConfig& c, bool multipart);
// Multipart part n / complete: <origin><path>/<n><query> of the upload_url (docs/fal-protocol.md#storage).
std::string upload_part(std::string_view upload_url, int part_number);
std::string upload_complete(std::string_view upload_url);
}  // namespace fal_url

}  // namespace kr::net
