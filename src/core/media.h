// Reading just enough of a local media file to check fal's limits without decoding it:
// image dimensions from the header, mp4/mov duration, frame size and frame rate from the moov box.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace kr {

struct MediaInfo {
  std::uintmax_t bytes = 0;
  int width = 0, height = 0;         // 0 when unknown
  double seconds = 0;                // videos only; 0 when unknown
  double fps = 0;                    // videos: average frame rate of the video track; 0 when unknown
  // What the first bytes say the file is: "png", "jpeg", "gif", "webp", "avif" (images), "mp4"
  // (any ISO-BMFF movie: mp4, mov, m4v), "webm"; "" when none of these.
  std::string format;
};

// "image" or "video" for a MediaInfo::format ("" for "").
const char* format_kind(const std::string& format);

// Returns nullopt when the file cannot be opened.
std::optional<MediaInfo> probe_media(const std::filesystem::path& path);

// MIME type for an upload, from the extension ("application/octet-stream" when unknown).
std::string media_content_type(const std::string& path);

// Lower-case extension without the dot, from a path or a URL (query and fragment ignored).
std::string media_extension(const std::string& path_or_url);

}  // namespace kr
