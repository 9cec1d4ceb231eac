#include "stages/dedup/clusters/shuffle.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace sf::stages::dedup::detail {

Fetched fetch(Comm& comm, const RowOwners& owners, const std::vector<DocRef>& docs,
              const std::vector<uint64_t>& rows,
              const std::function<void(size_t, Bytes&)>& encode) {
  const int ranks = comm.size();
  std::vector<std::vector<uint64_t>> requests(ranks);
  cluster::run_local_phase(comm, "dedup: fetch requests", [&] {
    for (uint64_t row : rows) requests[owners.owner(row)].push_back(row);
  });
  const std::vector<std::vector<uint64_t>> asked = exchange(comm, requests);
  std::vector<Bytes> replies(ranks);
  cluster::run_local_phase(comm, "dedup: fetch replies", [&] {
    Bytes payload;
    for (int s = 0; s < ranks; ++s) {
      for (uint64_t row : asked[s]) {
        payload.clear();
        encode(local_index(docs, row), payload);
        const uint64_t n = payload.size();
        const char* p = reinterpret_cast<const char*>(&n);
        replies[s].insert(replies[s].end(), p, p + sizeof n);
        replies[s].insert(replies[s].end(), payload.begin(), payload.end());
      }
    }
  });
  std::vector<Bytes> answers = comm.alltoallv(replies);
  replies.clear();
  Fetched out;
  out.begin.reserve(rows.size() + 1);
  size_t total = 0;
  for (const Bytes& a : answers) total += a.size();
  out.data.reserve(total);
  for (Bytes& a : answers) {  // sorted rows: owners increase with rank, so order matches
    size_t at = 0;
    while (at < a.size()) {
      uint64_t n = 0;
      std::memcpy(&n, a.data() + at, sizeof n);
      at += sizeof n;
      out.begin.push_back(out.data.size());
      out.data.insert(out.data.end(), a.begin() + static_cast<std::ptrdiff_t>(at),
                      a.begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
    }
    Bytes().swap(a);
  }
  out.begin.push_back(out.data.size());
  if (out.begin.size() != rows.size() + 1)
    throw std::logic_error("dedup: fetch returned " + std::to_string(out.begin.size() - 1) +
                           " payloads for " + std::to_string(rows.size()) + " rows");
  return out;
}

// Collective: the label (a row) of each of `rows`, from their owners.
std::vector<uint64_t> fetch_labels(Comm& comm, const RowOwners& owners,
                                   const std::vector<DocRef>& docs,
                                   const std::vector<uint64_t>& labels,
                                   const std::vector<uint64_t>& rows) {
  const Fetched f = fetch(comm, owners, docs, rows, [&](size_t i, Bytes& out) {
    const char* p = reinterpret_cast<const char*>(&labels[i]);
    out.insert(out.end(), p, p + sizeof(uint64_t));
  });
  std::vector<uint64_t> out(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) std::memcpy(&out[k], f.at(k), sizeof(uint64_t));
  return out;
}

void check_docs(RowRange range, const std::vector<DocRef>& docs) {
  for (size_t i = 0; i < docs.size(); ++i) {
    const DocRef& d = docs[i];
    if (static_cast<int64_t>(d.row) < range.begin || static_cast<int64_t>(d.row) >= range.end ||
        d.row > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw std::invalid_argument("document " + std::to_string(i) + ": row " +
                                  std::to_string(d.row) + " lies outside this rank's range [" +
                                  std::to_string(range.begin) + ", " +
                                  std::to_string(range.end) + ")");
    if (i > 0 && docs[i - 1].row >= d.row)
      throw std::invalid_argument("documents are not sorted by strictly increasing row (row " +
                                  std::to_string(d.row) + " after row " +
                                  std::to_string(docs[i - 1].row) + ")");
    if (!std::isfinite(d.keep_score))
      throw std::invalid_argument("row " + std::to_string(d.row) +
                                  ": keep score is not a finite number");
  }
}

}  // namespace sf::stages::dedup::detail
