// Stage `tune` (index.factory: auto): the index chosen for a size limit and a recall target by
// measuring candidates on a sample of the user's corpus, as autofaiss chooses by rules of thumb.
//
// 1. nlist from the corpus size (auto_nlists: up to four, each tuned alike); the coarse
//    quantizer is the build's own: the caller trains "IVF<nlist>,Flat" with train_index (distributed k-means on the training
//    sample the build draws anyway) and passes its centroids; the chosen factory's train then
//    continues from that k-means state instead of redoing it (same bytes).
// 2. The candidates: that quantizer with each code of candidate_codes(d) (Flat, SQ8, SQ6, SQ4,
//    PQ<m> for m dividing d), and each PQ again behind an OPQ rotation ("OPQ<m>,IVFn,PQ<m>np").
//    Each one's finished size is known before any work (estimated_index_bytes: FAISS's
//    serialization of the trained, empty index plus code and id per row); those over
//    index.memory_budget are out.
// 3. The tuning sample: index.tune_rows database rows and index.tune_queries held-out query
//    rows, drawn by the seed (the same rows for any rank count) and gathered on every rank.
//    Shared work, spread over the ranks and their threads in fixed blocks: the rows' list
//    numbers, the queries' nearest lists, the queries' exact top-k among the database rows.
// 4. Each candidate, whole on one thread of one rank (candidates round-robin over the ranks):
//    its codes trained on a subset of the database rows, the rows added, and the queries
//    searched at doubling then bisected nprobe until recall@k reaches the target: the smallest
//    such nprobe, the codes it scans per query (FAISS's ndis), scaled to the corpus. A code
//    whose recall stops rising short of the target is given up there (gives_up in the .cc).
//    The OPQ candidates come after the others, and only where they can pay: where their
//    modelled cost at the least nprobe the lists allow (the uncompressed IVF's recall on the
//    sample reaching the target) is below the best so far, or nothing reached the target. Their
//    rotation (one per m, FAISS's OPQMatrix with 10 iterations instead of 50) trains on the
//    codebook rows; the IVF behind it takes the rotated centroids (a rotation keeps distances:
//    the sample's lists serve it unchanged).
// 5. The choice: among the candidates within the budget that reach the target, the least
//    search cost per query (cost model below); ties go to the smaller index.
//
// Determinism: recall, codes scanned and sizes decide, never a timing, and every FAISS call
// runs single-threaded on fixed shapes (stages/block_parallel.h): the same choice for any rank
// and thread count. The sample QPS each candidate measured is reported, not used.
//
// What a sample cannot show: with fewer rows than the corpus, the neighbours of a query are
// farther apart than in the corpus, so the recall at an nprobe is an estimate (eval measures
// the real curve afterwards: eval.target_recall). PCA (fewer dimensions) is not tried: it
// loses recall that no nprobe gives back, where OPQ keeps every dimension.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <faiss/Index.h>
#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "io/vector_file.h"
#include "stages/progress.h"

namespace sf::stages {

// The lists of an automatic index of `rows` rows: the power of two nearest 4 sqrt(rows)
// (FAISS's guideline for corpora below ~1M rows is 4-16 sqrt), with at least 39 rows per list
// (FAISS's minimum training points per centroid) and at least 1 list. No MPI.
int auto_nlist(int64_t rows);
// The nlists the tune stage tries: auto_nlist, and 2, 4 and 8 times it where that leaves at
// least 20 rows per list (fewer k-means points per centroid than FAISS's recommended 39), or at
// least 4 where one k-means iteration (rows x nlist x d) is under 1e9 multiply-adds (a small
// corpus: its k-means takes seconds). On Fashion-MNIST (60,000 rows) that is 1024 and 2048: a
// python3-faiss grid's best SQ8 index had the first, its best SQ4 the second; on the SIFT sample
// (5,000) 128 to 1024: the grid's best SQ8 had 1024 (bench/RESULTS.md). No MPI.
std::vector<int> auto_nlists(int64_t rows, int d);

// The codes tried for `d` dimensions: Flat, SQ8, SQ6, SQ4 and PQ<m>np for each m = d / s with
// s in {4, 8, 16} dividing d (8-bit codes of s dimensions each; no polysemous training, which
// takes minutes and serves only Hamming-filtered search). Not PQ<d/2>: as large as SQ4 and the
// dearest to train and to search (measured on Fashion-MNIST: 4x SQ4's tuning time). No MPI.
std::vector<std::string> candidate_codes(int d);

// The size of the finished index.faiss (memory layout) of `index` (trained or not, empty
// lists, its quantizer filled) holding `rows` rows: its serialization, plus what training adds
// to an untrained scalar quantizer (2 x d floats), plus per row its code and its 8-byte id.
uint64_t estimated_index_bytes(const faiss::Index& index, int64_t rows);

struct TuneOptions {
  bool inner_product = false;
  int k = 10;                 // recall@k
  double target_recall = 0.9;
  uint64_t budget_bytes = 0;  // the finished index's size limit; 0: none
  int64_t tune_rows = 65536;  // database rows of the tuning sample (fewer when the corpus is)
  int64_t tune_queries = 1000;
  int64_t codebook_rows = 8192;  // of the database rows, to train a candidate's codes
  int max_nprobe = 4096;          // the largest nprobe tried (capped by nlist)
  uint64_t seed = 1234;
};

struct TuneCandidate {
  std::string factory;       // "IVF1024,SQ8"
  int nlist = 0;
  uint64_t index_bytes = 0;  // estimated_index_bytes at the corpus's rows
  bool fits = true;          // within the budget (only these are measured)
  bool measured = false;     // false for one that fits: an OPQ candidate that cannot pay
                             // (then tried_nprobe and recall are its lists' ceiling)
  int nprobe = 0;            // the smallest reaching the target on the sample; 0: none did
  int tried_nprobe = 0;      // nprobe, or the largest tried (the recall stopped rising, or nlist)
  double recall = 0;         // recall@k at tried_nprobe
  double codes_per_query = 0;  // codes scanned per query at nprobe, scaled to the corpus
  double cost = 0;             // modelled search cost per query (ns, single thread); of an
                               // OPQ candidate not measured, its least (at tried_nprobe)
  double sample_qps = 0;       // measured on the sample, single thread (evidence only)
  double seconds = 0;          // this candidate's training, add and searches
};

struct TuneResult {
  int64_t corpus_rows = 0, db_rows = 0, queries = 0;
  std::vector<TuneCandidate> candidates;
  int chosen = -1;  // index into candidates; -1: none reached the target within the budget
  // The chosen candidate's OPQ rotation (d x d floats, FAISS's LinearTransform::A) as the
  // tuning trained it; empty when the choice has none.
  std::vector<float> rotation;
};

// The n rows of x (d_in floats each) through the d_out x d_in matrix `a` (y = a x, as FAISS's
// LinearTransform applies it), summed in double in a fixed order: the same bytes on any CPU
// (the tuning's k-means centroids, turned for an OPQ choice). No MPI.
std::vector<float> rotate_rows(const std::vector<float>& a, int d_in, const float* x, int64_t n);

// The candidates of an index of `rows` rows x `d` dims and `nlist` lists: factory, size and
// whether it fits options.budget_bytes (nothing measured yet). No MPI.
std::vector<TuneCandidate> tune_candidates(int d, int nlist, int64_t rows, const TuneOptions& options);

// The m of an "OPQ<m>,..." factory; 0 for any other. No MPI.
int opq_m(const std::string& factory);

// Modelled single-thread search cost per query, in ns, of `factory`'s codes: the coarse
// quantizer (nlist x d), and per code scanned the code's distance (Flat: d floats; SQ: d
// decoded values; PQ: m table lookups, plus its distance tables per probe), and a rotation's
// matrix product per query. The constants
// were measured with Debian's FAISS 1.7.3 (bench/RESULTS.md, "Automatic index choice"). No MPI.
double modelled_cost(const faiss::Index& index, double codes_per_query, int nprobe);

// A trained coarse quantizer: nlist x d centroids.
struct CoarseQuantizer {
  int nlist = 0;
  std::vector<float> centroids;
};

// Collective. Measures every candidate code on each of `quantizers` over one tuning sample of
// `corpus` (this rank reads the sample rows in `range`; the sample and its exact neighbours
// serve every quantizer) and chooses one (see the top of this file). Throws alike on every
// rank: io::InputError, cluster::PhaseError. Choosing nothing is not an error here: chosen is
// -1 (the caller says why, from the candidates).
TuneResult tune_index(cluster::Comm& comm, io::VectorCorpus& corpus, cluster::RowRange range,
                      const std::vector<CoarseQuantizer>& quantizers, const TuneOptions& options,
                      const ProgressFn& progress = {});

// Of `candidates`, the one tune_index chooses (the least modelled cost among those measured
// that reached the target; then the smaller index; then the first): its index, or -1. No MPI.
int choose_candidate(const std::vector<TuneCandidate>& candidates);

// The candidates and the choice as JSON (tune.json's "candidates", run.json; "nlist" is the
// chosen candidate's). No MPI.
nlohmann::json tune_json(const TuneResult& result);

}  // namespace sf::stages
