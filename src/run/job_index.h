// An index from a hash to the runner's jobs: open addressing in one array, so a lookup costs
// one or two cache lines. A plan holds 100,000 jobs; with a node per entry (unordered_map),
// the cache misses of its two indexes took a sixth of `plan`'s time.
#pragma once
#include <cstddef>
#include <vector>

namespace kr::run {

struct Job;

class JobIndex {
 public:
  // Several jobs may share a hash; find() tells them apart.
  void insert(std::size_t hash, Job* job) {
    if ((used_ + 1) * 2 > slots_.size()) grow();
    place(hash, job);
    ++used_;
  }

  // Calls fn(job) for every job stored under `hash`, in no particular order.
  template <class Fn>
  void for_each(std::size_t hash, Fn&& fn) const {
    if (slots_.empty()) return;
    std::size_t mask = slots_.size() - 1;
    for (std::size_t i = spread(hash) & mask; slots_[i].job; i = (i + 1) & mask)
      if (slots_[i].hash == hash) fn(slots_[i].job);
  }

  std::size_t size() const { return used_; }

 private:
  struct Slot {
    std::size_t hash = 0;
    Job* job = nullptr;  // nullptr: empty
  };

  // The slot comes from the low bits: mix the high ones in (splitmix64's finalizer), so a
  // weak hash still spreads.
  static std::size_t spread(std::size_t h) {
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    return h ^ (h >> 31);
  }

  void place(std::size_t hash, Job* job) {
    std::size_t mask = slots_.size() - 1;
    std::size_t i = spread(hash) & mask;
    while (slots_[i].job) i = (i + 1) & mask;
    slots_[i] = {hash, job};
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    for (auto& s : old)
      if (s.job) place(s.hash, s.job);
  }

  std::vector<Slot> slots_;  // size a power of two, at most half full
  std::size_t used_ = 0;
};

}  // namespace kr::run
