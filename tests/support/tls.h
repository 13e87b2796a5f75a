#pragma once
// Test helper: a throwaway self-signed certificate for 127.0.0.1, made with the openssl tool
// (scripts/setup.sh installs it), for the fake fal server's --tls-cert / --tls-key.

#include <filesystem>
#include <stdexcept>
#include <string>

#include "process.h"

namespace krt {

struct TlsCert {
  std::string cert, key;  // PEM files; the certificate is also the CA a client must trust
};

inline TlsCert make_tls_cert(const std::filesystem::path& dir) {
  TlsCert t{(dir / "cert.pem").string(), (dir / "key.pem").string()};
  ProcOptions o;
  o.args = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", t.key, "-out", t.cert, "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1"};
  o.timeout_s = 30;
  ProcResult r = run_process(o);
  if (r.exit_code != 0) throw std::runtime_error("openssl req failed: " + r.describe());
  return t;
}

}  // namespace krt
