// Normalization turns what a script wrote into exactly what fal will receive, before validation,
// so that the request validated, priced, hashed and sent is one and the same object.
#pragma once
#include "core/catalog.h"
#include "core/report.h"

namespace kr {

// - `null` fields are dropped (fal treats them as absent);
// - numbers for `duration` (top level and per shot) become fal's strings ("5");
// - shots without a duration get fal's default "5"; when `multi_prompt` is given without
//   `duration`, `duration` becomes the sum of the shots;
// - fields fal ignores on this endpoint (aspect_ratio on image-to-video) are dropped with a warning;
// - catalog defaults marked `fill` (duration, generate_audio, aspect_ratio; shot_type with
//   multi_prompt) are written in, so the price never depends on an unstated default.
json normalize(const Endpoint& endpoint, json input, Report& report);

}  // namespace kr
