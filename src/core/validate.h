// validate() implements every rule of docs/validation.md on a normalized input. Errors and
// warnings are kept apart; each names the field path, the value and the rule. Rule numbers in
// comments are those of docs/validation.md (rule 8 = docs/validation.md#r8).
#pragma once
#include <functional>

#include "core/catalog.h"
#include "core/report.h"

namespace kr {

Report validate(const Endpoint& endpoint, const json& input, const Catalog& catalog = Catalog::builtin());

// Rule 24: media limits. Local paths are read (size, type, image dimensions, mp4/mov duration and
// size); URLs are checked by extension only, and only when the URL path has one.
void check_media(const Endpoint& endpoint, const json& input, const Catalog& catalog, Report& report);

// Calls fn for every non-empty media string of the input (top-level image fields, image lists,
// element images and videos) with its kind ("image"/"video") and path ("elements[0].video_url").
// fn may rewrite the value in place (the uploader swaps local paths for URLs).
void for_each_media(const Endpoint& endpoint, json& input,
                    const std::function<void(json& value, const std::string& kind, const std::string& path)>& fn);

// True for strings that name a remote file (http, https, data:) rather than a local path.
bool is_remote_url(const std::string& s);
// The local file a media value names ("file://" taken off); "" for a remote one.
std::string local_media_path(const std::string& value);

}  // namespace kr
