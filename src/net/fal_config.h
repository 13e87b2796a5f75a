#pragma once
// Where fal lives and who we are: base URLs (overridable for the fake server) and the key.

#include <string>

namespace kr::net {

std::string default_user_agent();

struct FalConfig {
  std::string queue_url = "https://queue.fal.run";  // may carry a path prefix
  std::string rest_url = "https://rest.fal.ai";
  std::string key;  // "<key_id>:<key_secret>"; empty = send no Authorization
  std::string user_agent = default_user_agent();  // "klingrun/<version>"
  // CA certificates (PEM) to trust instead of the system's, for every host: fal, its CDN and
  // storage. Empty = the system's store. For TLS-intercepting proxies and for tests.
  std::string ca_bundle;
  // How long a job fal accepted is followed through failing status calls before this run
  // gives it up (a re-run picks it up again). KLINGRUN_FOLLOW_OUTAGE, in seconds.
  double follow_outage_s = 600;
  std::string follow_outage_text;  // KLINGRUN_FOLLOW_OUTAGE as set, when it was not a number

  // FAL_KEY, else FAL_KEY_ID + ":" + FAL_KEY_SECRET; FAL_QUEUE_URL, FAL_REST_URL override the
  // defaults when set and non-empty. ca_bundle from CURL_CA_BUNDLE, else SSL_CERT_FILE (the
  // names curl's own tool and OpenSSL read).
  static FalConfig from_env();
  // Empty when the settings are usable; else what is wrong, naming the file or variable (an
  // unreadable ca_bundle, a KLINGRUN_FOLLOW_OUTAGE that is no number). Checked before anything
  // is sent, so that a typo does not fail every request one by one.
  std::string problem() const;
};

}  // namespace kr::net
