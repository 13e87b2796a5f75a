// Rule 24 of docs/validation.md#r24: media limits, on real temporary files with hand-written headers.
#include <algorithm>

#include "core/media.h"
#include "core_test_util.h"

using kr::json;
using krt::TempDir;

namespace {

std::string make(const TempDir& dir, const std::string& name, const std::vector<unsigned char>& bytes) {
  auto p = dir / name;
  krt::write_bytes(p, bytes);
  return p.string();
}

// A sparse file of `size` bytes starting with `head`.
std::string make_sized(const TempDir& dir, const std::string& name, const std::vector<unsigned char>& head, std::uintmax_t size) {
  auto p = make(dir, name, head);
  std::filesystem::resize_file(p, size);
  REQUIRE(std::filesystem::file_size(p) == size);
  return p;
}

kr::Report i2v(const std::string& start, json extra = json::object()) {
  json in = {{"prompt", "@Element1 waves"}, {"start_image_url", start}};
  for (auto& [k, v] : extra.items()) in[k] = v;
  if (!in.contains("elements")) in["prompt"] = "waves";
  return krt::check("v3/pro/i2v", in).report;
}

kr::Report with_video_element(const std::string& video) {
  return krt::check("v3/pro/i2v", {{"prompt", "@Element1 dances"},
                                   {"start_image_url", "https://cdn.test/s.png"},
                                   {"elements", {{{"video_url", video}}}}})
      .report;
}

}  // namespace

TEST_CASE("media: probe_media reads image headers", "[media]") {
  TempDir dir;
  struct Case { std::string name; std::vector<unsigned char> bytes; int w, h; std::string format; };
  std::vector<Case> cases = {
      {"a.png", krt::png(640, 480), 640, 480, "png"},
      {"b.jpg", krt::jpeg(1920, 1080), 1920, 1080, "jpeg"},
      {"c.gif", krt::gif(400, 300), 400, 300, "gif"},
      {"d.webp", krt::webp_vp8(800, 600), 800, 600, "webp"},
      {"e.webp", krt::webp_vp8l(500, 700), 500, 700, "webp"},
      {"f.webp", krt::webp_vp8x(3000, 2000), 3000, 2000, "webp"},
      {"exif.jpg", krt::jpeg_with_thumbnail(4000, 3000, 160, 120), 4000, 3000, "jpeg"},
  };
  for (auto& c : cases) {
    INFO(c.name);
    auto p = make(dir, c.name, c.bytes);
    auto info = kr::probe_media(p);
    REQUIRE(info.has_value());
    CHECK(info->format == c.format);
    CHECK(info->width == c.w);
    CHECK(info->height == c.h);
    CHECK(info->bytes == c.bytes.size());
    CHECK(info->seconds == 0);
  }
  SECTION("unknown content: size only") {
    auto p = make(dir, "x.png", {'h', 'e', 'l', 'l', 'o'});
    auto info = kr::probe_media(p);
    REQUIRE(info);
    CHECK(info->bytes == 5);
    CHECK(info->format == "");
    CHECK(info->width == 0);
    CHECK(info->height == 0);
  }
  SECTION("a missing file") { CHECK_FALSE(kr::probe_media(dir / "missing.png").has_value()); }
}

TEST_CASE("media: probe_media reads mp4 duration and frame size", "[media]") {
  TempDir dir;
  auto p = make(dir, "v.mp4", krt::mp4(1280, 720, 1000, 5000));
  auto info = kr::probe_media(p);
  REQUIRE(info);
  CHECK(info->width == 1280);
  CHECK(info->height == 720);
  CHECK(info->seconds == Approx(5.0));
  auto v1 = make(dir, "v1.mov", krt::mp4(1920, 1080, 90000, 90000ull * 7 + 45000, true));
  info = kr::probe_media(v1);
  REQUIRE(info);
  CHECK(info->seconds == Approx(7.5));
  CHECK(info->width == 1920);
}

TEST_CASE("media: probe_media reads the video track's frame rate from its sample table", "[media]") {
  TempDir dir;
  auto fps_of = [&](const std::string& name, const krt::Frames& f, const std::vector<krt::Frames>& before = {}) {
    auto info = kr::probe_media(make(dir, name, krt::mp4(1280, 720, 1000, 5000, false, &f, before)));
    REQUIRE(info);
    CHECK(info->width == 1280);  // the first track with a size
    return info->fps;
  };
  CHECK(fps_of("30.mp4", {15360, {{150, 512}}}) == Approx(30.0));
  CHECK(fps_of("ntsc.mp4", {24000, {{120, 1001}}}) == Approx(23.976).epsilon(1e-4));
  // Variable rate: the average over the whole table.
  CHECK(fps_of("vfr.mp4", {1000, {{100, 40}, {100, 20}}}) == Approx(200.0 / 6.0));
  // An audio track first: only the video track counts.
  CHECK(fps_of("av.mp4", {90000, {{125, 3600}}}, {{48000, {{235, 1024}}, "soun"}}) == Approx(25.0));
  // No sample table, or none of a video track: unknown.
  CHECK(kr::probe_media(make(dir, "bare.mp4", krt::mp4(1280, 720, 1000, 5000)))->fps == 0);
  krt::Frames audio{48000, {{235, 1024}}, "soun"};
  CHECK(kr::probe_media(make(dir, "audio.mp4", krt::mp4(1280, 720, 1000, 5000, false, &audio)))->fps == 0);
}

TEST_CASE("media: media_extension", "[media]") {
  CHECK(kr::media_extension("photos/Hero.PNG") == "png");
  CHECK(kr::media_extension("/tmp/a.b/c.jpeg") == "jpeg");
  CHECK(kr::media_extension("/tmp/a.b/noext") == "");
  CHECK(kr::media_extension("https://cdn.test/x/y.webp?sig=a.b#frag") == "webp");
  CHECK(kr::media_extension("https://cdn.test/x/file") == "");
  CHECK(kr::media_extension("https://cdn.test/dir.v2/file?name=a.png") == "");
  // Only the URL path counts, never the host.
  CHECK(kr::media_extension("https://example.com") == "");
  CHECK(kr::media_extension("https://images.example.com?id=3") == "");
  CHECK(kr::media_extension("http://example.com/") == "");
}

TEST_CASE("media: media_content_type", "[media]") {
  CHECK(kr::media_content_type("a/b.PNG") == "image/png");
  CHECK(kr::media_content_type("x.jpg") == "image/jpeg");
  CHECK(kr::media_content_type("x.jpeg") == "image/jpeg");
  CHECK(kr::media_content_type("x.webp") == "image/webp");
  CHECK(kr::media_content_type("x.gif") == "image/gif");
  CHECK(kr::media_content_type("x.avif") == "image/avif");
  CHECK(kr::media_content_type("clip.mp4") == "video/mp4");
  CHECK(kr::media_content_type("clip.MOV") == "video/quicktime");
  CHECK(kr::media_content_type("clip.webm") == "video/webm");
  CHECK(kr::media_content_type("clip.m4v") == "video/x-m4v");
  CHECK(kr::media_content_type("notes.txt") == "application/octet-stream");
  CHECK(kr::media_content_type("noext") == "application/octet-stream");
}

TEST_CASE("media: for_each_media visits every media string with its kind and path", "[media]") {
  json in = {{"prompt", "@Element1 @Element2"},
             {"start_image_url", "s.png"},
             {"end_image_url", ""},
             {"elements", {{{"frontal_image_url", "f.png"}, {"reference_image_urls", {"r0.png", "r1.png"}}},
                           {{"video_url", "v.mp4"}, {"voice_id", "not-media"}}}}};
  std::vector<std::string> seen;
  kr::for_each_media(krt::ep("v3/pro/i2v"), in, [&](json& v, const std::string& kind, const std::string& path) {
    seen.push_back(path + "=" + kind + ":" + v.get<std::string>());
    v = "https://fal.media/" + v.get<std::string>();  // the uploader rewrites in place
  });
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"elements[0].frontal_image_url=image:f.png",
                                         "elements[0].reference_image_urls[0]=image:r0.png",
                                         "elements[0].reference_image_urls[1]=image:r1.png",
                                         "elements[1].video_url=video:v.mp4",
                                         "start_image_url=image:s.png"});
  CHECK(in["start_image_url"] == "https://fal.media/s.png");
  CHECK(in["end_image_url"] == "");  // empty strings are not visited
  CHECK(in["elements"][0]["reference_image_urls"][1] == "https://fal.media/r1.png");
  CHECK(in["elements"][1]["video_url"] == "https://fal.media/v.mp4");
  CHECK(in["elements"][1]["voice_id"] == "not-media");

  json r2v = {{"prompt", "a"}, {"image_urls", {"a.png", "b.webp"}}};
  std::vector<std::string> paths;
  kr::for_each_media(krt::ep("o3/pro/r2v"), r2v, [&](json&, const std::string& kind, const std::string& path) { paths.push_back(path + "=" + kind); });
  CHECK(paths == std::vector<std::string>{"image_urls[0]=image", "image_urls[1]=image"});
}

TEST_CASE("rule 24: local images", "[media][rule24]") {
  TempDir dir;
  SECTION("a valid image of each type passes with no warning") {
    for (auto [name, bytes] : std::vector<std::pair<std::string, std::vector<unsigned char>>>{
             {"ok.png", krt::png(1024, 768)}, {"ok.jpg", krt::jpeg(1280, 720)}, {"ok.jpeg", krt::jpeg(300, 300)},
             {"ok.webp", krt::webp_vp8(750, 300)}, {"ok2.webp", krt::webp_vp8x(300, 750)}}) {
      INFO(name);
      auto r = i2v(make(dir, name, bytes));
      KR_NO_ERROR_AT(r, "start_image_url");
      KR_NO_WARNING_AT(r, "start_image_url");
    }
  }
  SECTION("a side below 300 px") {
    auto p = make(dir, "small.png", krt::png(299, 600));
    KR_HAS_ERROR(i2v(p), "start_image_url", "is 299×600; both sides must be at least 300 px");
    auto j = make(dir, "small.jpg", krt::jpeg(400, 200));
    KR_HAS_ERROR(i2v(j), "start_image_url", "is 400×200; both sides must be at least 300 px");
  }
  SECTION("width/height outside 0.40–2.50") {
    auto wide = make(dir, "wide.png", krt::png(1000, 300));
    KR_HAS_ERROR(i2v(wide), "start_image_url", "is 1000×300 (width/height 3.33); it must be between 0.40 and 2.50");
    auto tall = make(dir, "tall.webp", krt::webp_vp8l(300, 800));
    KR_HAS_ERROR(i2v(tall), "start_image_url", "(width/height 0.38); it must be between 0.40 and 2.50");
  }
  SECTION("above 10 MB") {
    auto big = make_sized(dir, "big.png", krt::png(1024, 1024), 10'000'001);
    KR_HAS_ERROR(i2v(big), "start_image_url", "is 10.0 MB, above the 10.0 MB limit for images");
    auto edge = make_sized(dir, "edge.png", krt::png(1024, 1024), 10'000'000);
    KR_NO_ERROR_AT(i2v(edge), "start_image_url");
  }
  SECTION("a missing file") {
    auto p = (dir / "missing.png").string();
    KR_HAS_ERROR(i2v(p), "start_image_url", "file \"" + p + "\" not found or unreadable");
  }
  SECTION("file:// paths are local files") {
    auto p = make(dir, "f.png", krt::png(100, 100));
    KR_HAS_ERROR(i2v("file://" + p), "start_image_url", "both sides must be at least 300 px");
  }
  SECTION("gif is a warning, not an error") {
    auto p = make(dir, "anim.gif", krt::gif(640, 480));
    auto r = i2v(p);
    KR_OK(r);
    KR_HAS_WARNING(r, "start_image_url", ".gif images are accepted by fal's upload form but UNCONFIRMED");
    KR_HAS_WARNING(r, "start_image_url", "prefer jpg or png");
    // ... and its size is still checked.
    KR_HAS_ERROR(i2v(make(dir, "tiny.gif", krt::gif(100, 100))), "start_image_url", "at least 300 px");
  }
  SECTION("an unaccepted extension, and a local file without one") {
    auto bmp = make(dir, "a.bmp", krt::png(640, 480));
    KR_HAS_ERROR(i2v(bmp), "start_image_url", ".bmp is not an accepted image type");
    auto noext = make(dir, "picture", krt::png(640, 480));
    auto r = i2v(noext);
    KR_OK(r);
    KR_HAS_WARNING(r, "start_image_url", "has no file extension");
  }
}

TEST_CASE("rule 24: a local file must hold what its field takes, whatever its name", "[media][rule24]") {
  TempDir dir;
  SECTION("a text file named .png is no image") {
    auto p = make(dir, "fake.png", {'n', 'o', 't', ' ', 'a', 'n', ' ', 'i', 'm', 'a', 'g', 'e'});
    auto r = i2v(p);
    KR_HAS_ERROR(r, "start_image_url", "is not an image klingrun recognises (its first bytes are not those of PNG, JPEG");
    CHECK(r.errors.size() == 1);
    KR_HAS_ERROR(i2v(make(dir, "empty.jpg", {})), "start_image_url", "is not an image klingrun recognises");
  }
  SECTION("a video named .png is no image, an image named .mp4 no video") {
    KR_HAS_ERROR(i2v(make(dir, "clip.png", krt::mp4(1280, 720, 1000, 5000))), "start_image_url",
                 "holds an MP4/MOV video, not an image");
    KR_HAS_ERROR(with_video_element(make(dir, "still.mp4", krt::png(1280, 720))), "elements[0].video_url",
                 "holds a PNG image, not a video");
    KR_HAS_ERROR(with_video_element(make(dir, "notes.mov", {'h', 'i'})), "elements[0].video_url",
                 "is not a video klingrun recognises (its first bytes are not those of MP4, MOV, WebM or GIF)");
  }
  SECTION("an image of another type than its name says: a warning, and its limits are still checked") {
    auto r = i2v(make(dir, "photo.png", krt::jpeg(1280, 720)));
    KR_OK(r);
    KR_HAS_WARNING(r, "start_image_url", "holds a JPEG image but is named .png; fal may go by either");
    KR_HAS_ERROR(i2v(make(dir, "small.webp", krt::png(200, 200))), "start_image_url", "both sides must be at least 300 px");
    // A .mov is an MP4-family file: no warning.
    KR_OK(with_video_element(make(dir, "ok.mov", krt::mp4(1280, 720, 1000, 5000))));
    KR_NO_WARNING_AT(with_video_element(make(dir, "ok2.mov", krt::mp4(1280, 720, 1000, 5000))), "elements[0].video_url");
  }
  SECTION("an image whose header gives no size: a warning that its limits went unchecked") {
    std::vector<unsigned char> cut = krt::png(640, 480);
    cut.resize(12);  // the signature, then the file ends
    auto r = i2v(make(dir, "cut.png", cut));
    KR_OK(r);
    KR_HAS_WARNING(r, "start_image_url", "its size could not be read from its header");
  }
}

TEST_CASE("rule 24: URLs are checked by extension only", "[media][rule24]") {
  KR_OK(i2v("https://cdn.test/whatever.png"));
  KR_NO_WARNING_AT(i2v("https://cdn.test/whatever.png"), "start_image_url");
  KR_NO_WARNING_AT(i2v("https://cdn.test/files/abc123"), "start_image_url");  // no extension: nothing to check
  KR_NO_WARNING_AT(i2v("https://example.com?id=3"), "start_image_url");
  KR_OK(i2v("https://example.com?id=3"));
  KR_HAS_ERROR(i2v("https://cdn.test/a.tiff"), "start_image_url", ".tiff is not an accepted image type");
  KR_HAS_ERROR(i2v("https://cdn.test/a.mp4?x=1"), "start_image_url", ".mp4 is not an accepted image type");
  auto avif = i2v("https://cdn.test/a.AVIF");
  KR_OK(avif);
  KR_HAS_WARNING(avif, "start_image_url", ".avif images are accepted by fal's upload form but UNCONFIRMED");
  // data: URIs are not checked at all.
  auto data = i2v("data:image/bmp;base64,AAAA");
  KR_OK(data);
  KR_NO_WARNING_AT(data, "start_image_url");
}

TEST_CASE("rule 24: every image field is checked under its own path", "[media][rule24]") {
  TempDir dir;
  auto small = make(dir, "small.png", krt::png(200, 200));
  auto good = make(dir, "good.png", krt::png(800, 800));
  SECTION("end_image_url, image_url, tail_image_url") {
    KR_HAS_ERROR(i2v(good, {{"end_image_url", small}}), "end_image_url", "at least 300 px");
    KR_HAS_ERROR(krt::check("o3/pro/i2v", {{"prompt", "a"}, {"image_url", small}}).report, "image_url", "at least 300 px");
    auto r = krt::check("v2.5-turbo/pro/i2v", {{"prompt", "a"}, {"image_url", good}, {"tail_image_url", small}}).report;
    KR_HAS_ERROR(r, "tail_image_url", "at least 300 px");
    KR_NO_ERROR_AT(r, "image_url");
  }
  SECTION("image_urls[i] on O3 R2V") {
    auto r = krt::check("o3/standard/r2v", {{"prompt", "@Image1 @Image2"}, {"image_urls", {good, small}}}).report;
    KR_NO_ERROR_AT(r, "image_urls[0]");
    KR_HAS_ERROR(r, "image_urls[1]", "is 200×200");
  }
  SECTION("element images") {
    auto r = i2v(good, {{"elements", {{{"frontal_image_url", small}, {"reference_image_urls", {good, small}}}}}});
    KR_HAS_ERROR(r, "elements[0].frontal_image_url", "is 200×200");
    KR_NO_ERROR_AT(r, "elements[0].reference_image_urls[0]");
    KR_HAS_ERROR(r, "elements[0].reference_image_urls[1]", "is 200×200");
    auto ok = i2v(good, {{"elements", {{{"frontal_image_url", good}, {"reference_image_urls", {good}}}}}});
    KR_OK(ok);
  }
  SECTION("through prepare(): a media error stops the request") {
    auto p = krt::prep("v3/pro/i2v", {{"prompt", "a"}, {"start_image_url", small}});
    CHECK_FALSE(p.ok());
    CHECK_FALSE(p.cost.has_value());
    KR_HAS_ERROR(p.report, "start_image_url", "at least 300 px");
    auto q = krt::prep("v3/pro/i2v", {{"prompt", "a"}, {"start_image_url", good}});
    CHECK(q.ok());
  }
}

TEST_CASE("rule 24: element videos", "[media][rule24]") {
  TempDir dir;
  SECTION("a valid mp4 / mov passes") {
    KR_OK(with_video_element(make(dir, "ok.mp4", krt::mp4(1280, 720, 1000, 5000))));
    KR_OK(with_video_element(make(dir, "ok.mov", krt::mp4(720, 1280, 600, 1800))));  // 3.0 s, portrait
    KR_OK(with_video_element(make(dir, "edge.mp4", krt::mp4(2160, 2160, 1000, 10050))));  // 10.05 s, 2160 px
  }
  SECTION("too short or too long") {
    auto short_ = make(dir, "short.mp4", krt::mp4(1280, 720, 1000, 2000));
    KR_HAS_ERROR(with_video_element(short_), "elements[0].video_url", "lasts 2.00 s; element videos must last 3.00–10.05 s");
    auto long_ = make(dir, "long.mp4", krt::mp4(1280, 720, 1000, 11000, true));
    KR_HAS_ERROR(with_video_element(long_), "elements[0].video_url", "lasts 11.00 s");
  }
  SECTION("frame size outside 720–2160 px") {
    auto small = make(dir, "small.mp4", krt::mp4(640, 360, 1000, 5000));
    KR_HAS_ERROR(with_video_element(small), "elements[0].video_url", "is 640×360; each side must be 720–2160 px");
    auto big = make(dir, "4k.mp4", krt::mp4(3840, 2160, 1000, 5000));
    KR_HAS_ERROR(with_video_element(big), "elements[0].video_url", "is 3840×2160; each side must be 720–2160 px");
  }
  SECTION("frame rate outside 24–60 fps") {
    auto at = [&](const std::string& name, krt::Frames f) { return make(dir, name, krt::mp4(1280, 720, 1000, 5000, false, &f)); };
    KR_OK(with_video_element(at("24.mp4", {24, {{120, 1}}})));
    KR_OK(with_video_element(at("60.mp4", {60, {{300, 1}}})));
    KR_HAS_ERROR(with_video_element(at("15.mp4", {15, {{75, 1}}})), "elements[0].video_url",
                 "runs at 15 fps; element videos must be 24–60 fps");
    KR_HAS_ERROR(with_video_element(at("120.mp4", {120, {{600, 1}}})), "elements[0].video_url", "runs at 120 fps");
    // NTSC's 23.976 is within 1% of the limit: whether fal rounds it is UNCONFIRMED, so a warning.
    auto r = with_video_element(at("ntsc.mp4", {24000, {{120, 1001}}}));
    KR_OK(r);
    KR_HAS_WARNING(r, "elements[0].video_url", "runs at 23.976 fps");
  }
  SECTION("above 200 MB") {
    auto big = make_sized(dir, "big.mp4", krt::mp4(1280, 720, 1000, 5000), 200'000'001);
    auto r = with_video_element(big);
    KR_HAS_ERROR(r, "elements[0].video_url", "is 200.0 MB, above the 200.0 MB limit for videos");
    CHECK(r.errors.size() == 1);  // duration and size still read from the moov box
  }
  SECTION("missing file") {
    auto p = (dir / "gone.mp4").string();
    KR_HAS_ERROR(with_video_element(p), "elements[0].video_url", "not found or unreadable");
  }
  SECTION("extensions: webm/m4v/gif warn, others are errors") {
    for (auto url : {"https://cdn.test/v.webm", "https://cdn.test/v.m4v", "https://cdn.test/v.gif"}) {
      INFO(url);
      auto r = with_video_element(url);
      KR_OK(r);
      KR_HAS_WARNING(r, "elements[0].video_url", "prefer mp4 or mov");
    }
    KR_HAS_ERROR(with_video_element("https://cdn.test/v.avi"), "elements[0].video_url", ".avi is not an accepted video type");
    KR_HAS_ERROR(with_video_element("https://cdn.test/v.png"), "elements[0].video_url", ".png is not an accepted video type");
    KR_OK(with_video_element("https://cdn.test/v.MOV"));
  }
}
