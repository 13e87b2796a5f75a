// Shared helpers for the core unit tests (tests/unit/core/*.cpp).
#pragma once
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "core/catalog.h"
#include "core/normalize.h"
#include "core/prepare.h"
#include "core/report.h"
#include "core/validate.h"
#include "files.h"

namespace krt {

using kr::json;

inline const kr::Endpoint& ep(const std::string& id) {
  const kr::Endpoint* e = kr::Catalog::builtin().find(id);
  if (!e) FAIL("endpoint not in catalog: " << id);
  return *e;
}

inline std::string dump_issues(const std::vector<kr::Issue>& v) {
  std::string out;
  for (auto& i : v) out += "  [" + i.path + "] " + i.message + "\n";
  return out.empty() ? "  (none)\n" : out;
}

inline std::string dump(const kr::Report& r) {
  return "errors:\n" + dump_issues(r.errors) + "warnings:\n" + dump_issues(r.warnings);
}

inline bool has_issue(const std::vector<kr::Issue>& v, const std::string& path, const std::string& sub) {
  for (auto& i : v)
    if (i.path == path && i.message.find(sub) != std::string::npos) return true;
  return false;
}
inline bool any_at(const std::vector<kr::Issue>& v, const std::string& path) {
  for (auto& i : v)
    if (i.path == path) return true;
  return false;
}

// Checks with the whole report in the failure message.
#define KR_HAS_ERROR(rep, path, sub)                                        \
  do {                                                                      \
    INFO("want error at [" << (path) << "] containing: " << (sub));         \
    INFO(krt::dump(rep));                                                   \
    CHECK(krt::has_issue((rep).errors, (path), (sub)));                     \
  } while (0)
#define KR_HAS_WARNING(rep, path, sub)                                      \
  do {                                                                      \
    INFO("want warning at [" << (path) << "] containing: " << (sub));       \
    INFO(krt::dump(rep));                                                   \
    CHECK(krt::has_issue((rep).warnings, (path), (sub)));                   \
  } while (0)
#define KR_NO_ERROR_AT(rep, path)                                           \
  do {                                                                      \
    INFO("want no error at [" << (path) << "]");                            \
    INFO(krt::dump(rep));                                                   \
    CHECK_FALSE(krt::any_at((rep).errors, (path)));                         \
  } while (0)
#define KR_NO_WARNING_AT(rep, path)                                         \
  do {                                                                      \
    INFO("want no warning at [" << (path) << "]");                          \
    INFO(krt::dump(rep));                                                   \
    CHECK_FALSE(krt::any_at((rep).warnings, (path)));                       \
  } while (0)
#define KR_OK(rep)                                                          \
  do {                                                                      \
    INFO(krt::dump(rep));                                                   \
    CHECK((rep).errors.empty());                                            \
  } while (0)

// normalize() then validate(), both reports merged (what prepare() does, minus elements/prices).
struct Checked {
  json input;
  kr::Report report;
};
inline Checked check(const std::string& endpoint, json input) {
  Checked c;
  c.input = kr::normalize(ep(endpoint), std::move(input), c.report);
  c.report.merge(kr::validate(ep(endpoint), c.input));
  return c;
}

inline kr::Prepared prep(const std::string& endpoint, json input, const kr::ElementRegistry* reg = nullptr) {
  kr::Request r;
  r.endpoint = endpoint;
  r.input = std::move(input);
  kr::CoreContext ctx;
  ctx.elements = reg;
  return kr::prepare(r, ctx);
}

using krt::TempDir;  // tests/support/files.h

inline void write_bytes(const std::filesystem::path& p, const std::vector<unsigned char>& bytes) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

inline void put_be32(std::vector<unsigned char>& b, std::uint32_t v) {
  b.push_back(static_cast<unsigned char>(v >> 24));
  b.push_back(static_cast<unsigned char>(v >> 16));
  b.push_back(static_cast<unsigned char>(v >> 8));
  b.push_back(static_cast<unsigned char>(v));
}
inline void put_be16(std::vector<unsigned char>& b, std::uint16_t v) {
  b.push_back(static_cast<unsigned char>(v >> 8));
  b.push_back(static_cast<unsigned char>(v));
}
inline void put_le16(std::vector<unsigned char>& b, std::uint16_t v) {
  b.push_back(static_cast<unsigned char>(v));
  b.push_back(static_cast<unsigned char>(v >> 8));
}
inline void put_le24(std::vector<unsigned char>& b, std::uint32_t v) {
  b.push_back(static_cast<unsigned char>(v));
  b.push_back(static_cast<unsigned char>(v >> 8));
  b.push_back(static_cast<unsigned char>(v >> 16));
}
inline void put_le32(std::vector<unsigned char>& b, std::uint32_t v) {
  put_le16(b, static_cast<std::uint16_t>(v));
  put_le16(b, static_cast<std::uint16_t>(v >> 16));
}
inline void put_str(std::vector<unsigned char>& b, const std::string& s) { b.insert(b.end(), s.begin(), s.end()); }

// PNG: signature + IHDR chunk (CRC not checked by the prober; written as zeros).
inline std::vector<unsigned char> png(std::uint32_t w, std::uint32_t h) {
  std::vector<unsigned char> b = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  put_be32(b, 13);
  put_str(b, "IHDR");
  put_be32(b, w);
  put_be32(b, h);
  b.insert(b.end(), {8, 2, 0, 0, 0});  // depth, colour type, compression, filter, interlace
  put_be32(b, 0);                      // CRC
  return b;
}

// JPEG: SOI, an APP0 segment (so the walker has to skip one), SOF0 with the size, EOI.
inline std::vector<unsigned char> jpeg(std::uint16_t w, std::uint16_t h) {
  std::vector<unsigned char> b = {0xFF, 0xD8};
  b.insert(b.end(), {0xFF, 0xE0});
  put_be16(b, 16);
  put_str(b, "JFIF");
  b.insert(b.end(), {0, 1, 1, 0, 0, 1, 0, 1, 0, 0});
  b.insert(b.end(), {0xFF, 0xC0});
  put_be16(b, 17);
  b.push_back(8);  // precision
  put_be16(b, h);
  put_be16(b, w);
  b.push_back(3);  // components
  b.insert(b.end(), {1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1});
  b.insert(b.end(), {0xFF, 0xD9});
  return b;
}

// JPEG whose APP1 (EXIF) segment embeds a thumbnail with its own SOF0 marker (tw × th) before the
// real SOF0 (w × h): a prober that does not skip segments by their length reads the thumbnail.
inline std::vector<unsigned char> jpeg_with_thumbnail(std::uint16_t w, std::uint16_t h, std::uint16_t tw, std::uint16_t th) {
  std::vector<unsigned char> thumb = {0xFF, 0xD8, 0xFF, 0xC0};
  put_be16(thumb, 17);
  thumb.push_back(8);
  put_be16(thumb, th);
  put_be16(thumb, tw);
  thumb.insert(thumb.end(), {3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1, 0xFF, 0xD9});
  std::vector<unsigned char> b = {0xFF, 0xD8, 0xFF, 0xE1};
  std::vector<unsigned char> payload;
  put_str(payload, "Exif");
  payload.insert(payload.end(), {0, 0});
  payload.insert(payload.end(), thumb.begin(), thumb.end());
  put_be16(b, static_cast<std::uint16_t>(payload.size() + 2));
  b.insert(b.end(), payload.begin(), payload.end());
  auto main = jpeg(w, h);
  b.insert(b.end(), main.begin() + 2, main.end());  // without its SOI
  return b;
}

inline std::vector<unsigned char> gif(std::uint16_t w, std::uint16_t h) {
  std::vector<unsigned char> b;
  put_str(b, "GIF89a");
  put_le16(b, w);
  put_le16(b, h);
  b.insert(b.end(), {0, 0, 0, 0x3B});
  return b;
}

// WebP, lossy ("VP8 ") variant.
inline std::vector<unsigned char> webp_vp8(std::uint16_t w, std::uint16_t h) {
  std::vector<unsigned char> b;
  put_str(b, "RIFF");
  put_le32(b, 30);
  put_str(b, "WEBP");
  put_str(b, "VP8 ");
  put_le32(b, 18);
  b.insert(b.end(), {0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a});  // frame tag, start code
  put_le16(b, w);
  put_le16(b, h);
  b.insert(b.end(), 8, 0);
  return b;
}

// WebP, extended ("VP8X") variant: canvas size minus one, 24-bit little endian.
inline std::vector<unsigned char> webp_vp8x(std::uint32_t w, std::uint32_t h) {
  std::vector<unsigned char> b;
  put_str(b, "RIFF");
  put_le32(b, 22);
  put_str(b, "WEBP");
  put_str(b, "VP8X");
  put_le32(b, 10);
  put_le32(b, 0);  // flags + reserved
  put_le24(b, w - 1);
  put_le24(b, h - 1);
  return b;
}

// WebP, lossless ("VP8L") variant: 0x2f signature, then 14-bit width-1 and height-1.
inline std::vector<unsigned char> webp_vp8l(std::uint32_t w, std::uint32_t h) {
  std::vector<unsigned char> b;
  put_str(b, "RIFF");
  put_le32(b, 22);
  put_str(b, "WEBP");
  put_str(b, "VP8L");
  put_le32(b, 10);
  b.push_back(0x2f);
  std::uint32_t bits = ((w - 1) & 0x3fff) | (((h - 1) & 0x3fff) << 14);
  put_le32(b, bits);
  b.insert(b.end(), 5, 0);
  return b;
}

inline std::vector<unsigned char> box(const std::string& type, const std::vector<unsigned char>& body) {
  std::vector<unsigned char> b;
  put_be32(b, static_cast<std::uint32_t>(8 + body.size()));
  put_str(b, type);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

// A track's sample timing: the media timescale and its stts entries (sample count, delta).
struct Frames {
  std::uint32_t timescale = 0;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> stts;
  std::string handler = "vide";
};

// trak { tkhd(v0: w, h) [, mdia { mdhd, hdlr, minf { stbl { stts } } }] }
inline std::vector<unsigned char> trak(std::uint32_t w, std::uint32_t h, std::uint64_t duration, const Frames* frames);

// Minimal ISO-BMFF file: ftyp + moov { mvhd(v0 or v1: timescale, duration), trak... }: one
// video track of w×h, with a sample table when `frames` is given, after `before` tracks.
inline std::vector<unsigned char> mp4(std::uint32_t w, std::uint32_t h, std::uint32_t timescale, std::uint64_t duration,
                                      bool mvhd_v1 = false, const Frames* frames = nullptr,
                                      const std::vector<Frames>& before = {}) {
  std::vector<unsigned char> ftyp;
  put_str(ftyp, "isom");
  put_be32(ftyp, 512);
  put_str(ftyp, "isomiso2mp41");

  std::vector<unsigned char> mvhd;
  if (mvhd_v1) {
    mvhd.insert(mvhd.end(), {1, 0, 0, 0});
    put_be32(mvhd, 0); put_be32(mvhd, 0);  // creation (64)
    put_be32(mvhd, 0); put_be32(mvhd, 0);  // modification (64)
    put_be32(mvhd, timescale);
    put_be32(mvhd, static_cast<std::uint32_t>(duration >> 32));
    put_be32(mvhd, static_cast<std::uint32_t>(duration));
  } else {
    mvhd.insert(mvhd.end(), {0, 0, 0, 0});
    put_be32(mvhd, 0);  // creation
    put_be32(mvhd, 0);  // modification
    put_be32(mvhd, timescale);
    put_be32(mvhd, static_cast<std::uint32_t>(duration));
  }
  put_be32(mvhd, 0x00010000);  // rate
  put_be16(mvhd, 0x0100);      // volume
  mvhd.insert(mvhd.end(), 10, 0);
  mvhd.insert(mvhd.end(), 36, 0);  // matrix
  mvhd.insert(mvhd.end(), 24, 0);  // pre_defined
  put_be32(mvhd, 2);               // next track id

  std::vector<unsigned char> out = box("ftyp", ftyp);
  auto moov = box("moov", [&] {
    auto m = box("mvhd", mvhd);
    for (const Frames& f : before) {
      auto t = trak(0, 0, duration, &f);
      m.insert(m.end(), t.begin(), t.end());
    }
    auto t = trak(w, h, duration, frames);
    m.insert(m.end(), t.begin(), t.end());
    return m;
  }());
  out.insert(out.end(), moov.begin(), moov.end());
  return out;
}

inline std::vector<unsigned char> trak(std::uint32_t w, std::uint32_t h, std::uint64_t duration, const Frames* frames) {
  std::vector<unsigned char> tkhd = {0, 0, 0, 7};
  put_be32(tkhd, 0);  // creation
  put_be32(tkhd, 0);  // modification
  put_be32(tkhd, 1);  // track id
  put_be32(tkhd, 0);  // reserved
  put_be32(tkhd, static_cast<std::uint32_t>(duration));
  tkhd.insert(tkhd.end(), 8, 0);   // reserved
  tkhd.insert(tkhd.end(), 8, 0);   // layer, alternate group, volume, reserved
  tkhd.insert(tkhd.end(), 36, 0);  // matrix
  put_be32(tkhd, w << 16);
  put_be32(tkhd, h << 16);
  auto t = box("tkhd", tkhd);
  if (frames) {
    std::vector<unsigned char> mdhd = {0, 0, 0, 0};
    put_be32(mdhd, 0);  // creation
    put_be32(mdhd, 0);  // modification
    put_be32(mdhd, frames->timescale);
    std::uint64_t ticks = 0;
    for (auto& [n, d] : frames->stts) ticks += std::uint64_t(n) * d;
    put_be32(mdhd, static_cast<std::uint32_t>(ticks));
    put_be32(mdhd, 0);  // language, pre_defined
    std::vector<unsigned char> hdlr = {0, 0, 0, 0};
    put_be32(hdlr, 0);  // pre_defined
    put_str(hdlr, frames->handler);
    hdlr.insert(hdlr.end(), 13, 0);  // reserved, empty name
    std::vector<unsigned char> stts = {0, 0, 0, 0};
    put_be32(stts, static_cast<std::uint32_t>(frames->stts.size()));
    for (auto& [n, d] : frames->stts) put_be32(stts, n), put_be32(stts, d);
    auto mdia = box("mdhd", mdhd);
    auto h2 = box("hdlr", hdlr);
    auto minf = box("minf", box("stbl", box("stts", stts)));
    mdia.insert(mdia.end(), h2.begin(), h2.end());
    mdia.insert(mdia.end(), minf.begin(), minf.end());
    auto md = box("mdia", mdia);
    t.insert(t.end(), md.begin(), md.end());
  }
  return box("trak", t);
}

}  // namespace krt
