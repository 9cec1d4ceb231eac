#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/comm.h"
#include "stages/embed/embedder.h"
#include "io/vector_file.h"
#include "stages/embed/hashed_embedder.h"
#include "stages/embed/precomputed_embedder.h"
#include "tests/test_util.h"

namespace sf::stages::embed {
namespace {

DocBatch batch_of(const std::vector<std::string_view>& texts) {
  DocBatch batch;
  batch.texts = texts;
  for (size_t i = 0; i < texts.size(); ++i) batch.rows.push_back(static_cast<int64_t>(i));
  batch.raw = texts;
  return batch;
}

std::vector<float> embed_one(const Embedder& embedder, std::string_view text) {
  std::vector<float> out(static_cast<size_t>(embedder.dim()));
  embedder.embed(batch_of({text}), out.data());
  return out;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

TEST(HashedEmbedder, DeterministicAndUnitLength) {
  HashedEmbedder embedder(256, 0);
  const std::vector<float> a = embed_one(embedder, "the quick brown fox jumps over the lazy dog");
  const std::vector<float> b = embed_one(HashedEmbedder(256, 0), "the quick brown fox jumps over the lazy dog");
  EXPECT_EQ(a, b);
  EXPECT_NEAR(dot(a, a), 1.0, 1e-6);
  EXPECT_NE(a, embed_one(HashedEmbedder(256, 1), "the quick brown fox jumps over the lazy dog"))
      << "the seed changes the hashing";
  EXPECT_EQ(embed_one(HashedEmbedder(64, 0), "abc").size(), 64u);
}

TEST(HashedEmbedder, EmptyTextIsTheZeroVector) {
  HashedEmbedder embedder(32, 0);
  EXPECT_EQ(embed_one(embedder, ""), std::vector<float>(32, 0.0f));
  // A single letter has no 3-gram but is a word: not zero.
  EXPECT_NEAR(dot(embed_one(embedder, "a"), embed_one(embedder, "a")), 1.0, 1e-6);
}

TEST(HashedEmbedder, NearCopiesAreCloserThanUnrelatedTexts) {
  HashedEmbedder embedder(256, 0);
  const auto base = embed_one(embedder, "inheritance in object oriented programming lets a class "
                                        "reuse the fields and methods of its parent class");
  const auto near = embed_one(embedder, "inheritance in object oriented programming allows a class "
                                        "to reuse the fields and methods of a parent class");
  const auto other = embed_one(embedder, "the page rank algorithm scores web pages by the links "
                                         "that point to them from other important pages");
  EXPECT_GT(dot(base, near), 0.8);
  EXPECT_LT(dot(base, other), 0.5);
  EXPECT_GT(dot(base, near), dot(base, other) + 0.3);
}

TEST(HashedEmbedder, SublinearTermWeights) {
  HashedEmbedder embedder(1 << 20, 0);  // wide enough that "zzz" features do not collide
  std::vector<float> once(1 << 20), thrice(1 << 20);
  embedder.term_weights("zzz", once.data());
  embedder.term_weights("zzz zzz zzz", thrice.data());
  // The word "zzz": 1 occurrence -> weight +-1; 3 occurrences -> +-(1 + ln 3).
  int checked = 0;
  for (size_t b = 0; b < once.size(); ++b) {
    if (std::fabs(once[b]) == 1.0f && std::fabs(thrice[b]) > 1.5f) {
      EXPECT_NEAR(std::fabs(thrice[b]), 1.0 + std::log(3.0), 1e-5);
      EXPECT_EQ(std::signbit(thrice[b]), std::signbit(once[b]));
      ++checked;
    }
  }
  EXPECT_GE(checked, 1);
}

TEST(HashedEmbedder, IdfFromDocumentFrequencies) {
  HashedEmbedder embedder(64, 0);
  const std::vector<std::string_view> corpus = {"apple banana", "apple cherry", "apple durian"};
  auto comm = cluster::make_serial_comm();
  embedder.fit(*comm, batch_of(corpus));
  // Recompute the frequencies from term_weights and check the smooth idf of every bucket.
  std::vector<int> df(64, 0);
  std::vector<float> w(64);
  for (std::string_view text : corpus) {
    embedder.term_weights(text, w.data());
    for (int b = 0; b < 64; ++b) df[b] += w[b] != 0.0f;
  }
  for (int b = 0; b < 64; ++b)
    EXPECT_FLOAT_EQ(embedder.idf()[b], static_cast<float>(std::log(4.0 / (1.0 + df[b])) + 1.0)) << b;
  // A bucket in every document has idf 1; one in no document has the largest.
  bool some_common = false;
  for (int b = 0; b < 64; ++b) some_common |= df[b] == 3 && embedder.idf()[b] == 1.0f;
  EXPECT_TRUE(some_common);
}

TEST(MakeEmbedder, ByNameWithClearErrors) {
  EmbedOptions options;
  EXPECT_EQ(make_embedder(options)->dim(), 256) << "hashed: 256 unless embed.dim says";
  options.dim = 128;
  EXPECT_EQ(make_embedder(options)->dim(), 128);
  options.method = "bert";
  try {
    make_embedder(options);
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'bert'"), std::string::npos) << e.what();
  }
  options.method = "hashed";
  options.dim = -1;
  EXPECT_THROW(make_embedder(options), std::invalid_argument);
  options.dim = 0;
  options.method = "precomputed";  // neither a file nor a field
  EXPECT_THROW(make_embedder(options), std::invalid_argument);
  options.vectors = "v.npy";
  options.vectors_field = "vec";  // both
  EXPECT_THROW(make_embedder(options), std::invalid_argument);
}

TEST(HashedEmbedder, StateRestoresTheSameVectors) {
  HashedEmbedder embedder(48, 9);
  auto comm = cluster::make_serial_comm();
  embedder.fit(*comm, batch_of({"one text here", "another text", "and a third one"}));
  const nlohmann::json state = nlohmann::json::parse(embedder.state().dump());  // via text
  auto restored = restore_embedder(state);
  EXPECT_EQ(restored->dim(), 48);
  EXPECT_EQ(embed_one(*restored, "a new text"), embed_one(embedder, "a new text"));
  nlohmann::json bad = state;
  bad["idf"] = {1.0, 2.0};
  EXPECT_THROW(restore_embedder(bad), std::invalid_argument);
  bad = state;
  bad["format_version"] = 99;
  EXPECT_THROW(restore_embedder(bad), std::invalid_argument);
  EXPECT_THROW(restore_embedder({{"format_version", 1}, {"method", "precomputed"}, {"dim", 3}}),
               std::invalid_argument);
}

using sf::testing::error_of;

TEST(PrecomputedEmbedder, FromAFileAlignedByRow) {
  sf::testing::TempDir dir;
  const std::string path = dir.path() + "/vectors.npy";
  const std::vector<float> m = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};  // 4 x 3
  io::write_npy_f32(path, m.data(), 4, 3);
  EmbedOptions options;
  options.method = "precomputed";
  options.vectors = path;
  auto embedder = make_embedder(options);
  EXPECT_EQ(embedder->dim(), 3);
  auto comm = cluster::make_serial_comm();
  DocBatch all = batch_of({"a", "b", "c", "d"});
  embedder->fit(*comm, all);
  DocBatch some = batch_of({"b", "c", "d"});
  some.rows = {1, 3, 2};  // not consecutive: read one run at a time
  std::vector<float> out(9);
  embedder->embed(some, out.data());
  EXPECT_EQ(out, (std::vector<float>{4, 5, 6, 10, 11, 12, 7, 8, 9}));

  // One row per document, or a clear error naming the file.
  const std::string rows = error_of([&] { embedder->fit(*comm, batch_of({"a", "b", "c"})); });
  EXPECT_NE(rows.find(path), std::string::npos) << rows;
  EXPECT_NE(rows.find("has 4 rows but the corpus has 3 documents"), std::string::npos) << rows;
  options.dim = 5;
  const std::string dim = error_of([&] { make_embedder(options); });
  EXPECT_NE(dim.find("embed.dim is 5"), std::string::npos) << dim;
  options.vectors = dir.path() + "/missing.npy";
  options.dim = 0;
  EXPECT_THROW(make_embedder(options), io::InputError);
}

TEST(PrecomputedEmbedder, FromAJsonlField) {
  EmbedOptions options;
  options.method = "precomputed";
  options.vectors_field = "vec";
  auto embedder = make_embedder(options);
  DocBatch docs;
  docs.texts = {"x", "y"};
  docs.rows = {10, 11};
  docs.raw = {R"({"text": "x", "vec": [0.5, -1, 2e3]})", R"({"vec": [1, 2, 3], "text": "y"})"};
  auto comm = cluster::make_serial_comm();
  embedder->fit(*comm, docs);  // the dimension comes from the first document
  ASSERT_EQ(embedder->dim(), 3);
  std::vector<float> out(6);
  embedder->embed(docs, out.data());
  EXPECT_EQ(out, (std::vector<float>{0.5f, -1, 2000, 1, 2, 3}));

  auto bad = [&](std::string_view raw) {
    DocBatch one;
    one.texts = {"t"};
    one.rows = {42};
    one.raw = {raw};
    std::vector<float> v(3);
    return error_of([&] { embedder->embed(one, v.data()); });
  };
  EXPECT_NE(bad(R"({"vec": [1, 2]})").find("row 42: embed.vectors_field 'vec' has 2 values, expected 3"),
            std::string::npos) << bad(R"({"vec": [1, 2]})");
  EXPECT_NE(bad(R"({"text": "t"})").find("'vec' is missing"), std::string::npos);
  EXPECT_NE(bad(R"({"vec": "1,2,3"})").find("not an array"), std::string::npos);
  EXPECT_NE(bad(R"({"vec": [1, "2", 3]})").find("'vec'[1] is not a number"), std::string::npos)
      << bad(R"({"vec": [1, "2", 3]})");
  EXPECT_NE(bad(R"({"vec": [1, 2, 1e300]})").find("not a finite float32"), std::string::npos);
  EXPECT_NE(bad("not json").find("not a JSON object"), std::string::npos);
}

// fit_begin / fit_batch / fit_end over batches of any size (empty ones too) learn the same
// state, to the byte, as fit() over all the documents at once (the embed stage reads its texts
// in batches planned from the memory budget).
TEST(Embedder, FitOverBatchesEqualsFitOverAll) {
  std::vector<std::string> texts, raws;
  for (int i = 0; i < 301; ++i) {
    std::string t = "doc " + std::to_string(i % 41) + " shared words";
    for (int j = 0; j < i % 7; ++j) t += " w" + std::to_string((i * 5 + j) % 29);
    texts.push_back(i % 60 == 0 ? std::string() : t);
    raws.push_back(R"({"vec": [)" + std::to_string(i) + ", 1, 2]}");
  }
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  DocBatch all = batch_of(views);
  all.raw.assign(raws.begin(), raws.end());
  auto comm = cluster::make_serial_comm();
  auto fit_batched = [&](Embedder& embedder, size_t per) {
    embedder.fit_begin();
    embedder.fit_batch(DocBatch{});
    for (size_t lo = 0; lo < all.size(); lo += per) {
      DocBatch part;
      for (size_t i = lo; i < std::min(all.size(), lo + per); ++i) {
        part.texts.push_back(all.texts[i]);
        part.rows.push_back(all.rows[i]);
        part.raw.push_back(all.raw[i]);
      }
      embedder.fit_batch(part);
    }
    embedder.fit_end(*comm);
  };
  HashedEmbedder whole(64, 5);
  whole.fit(*comm, all);
  EmbedOptions field;
  field.method = "precomputed";
  field.vectors_field = "vec";
  for (size_t per : {1, 2, 7, 64, 300, 1000}) {
    HashedEmbedder batched(64, 5);
    fit_batched(batched, per);
    EXPECT_EQ(batched.state().dump(), whole.state().dump()) << per << " documents per batch";
    auto precomputed = make_embedder(field);
    fit_batched(*precomputed, per);
    EXPECT_EQ(precomputed->dim(), 3) << per << " documents per batch";
  }
  HashedEmbedder nothing(64, 5);  // a rank without documents: fit_end alone
  nothing.fit_end(*comm);
  EXPECT_EQ(nothing.idf(), std::vector<float>(64, 1.0f));
}

// The one-read path of the embed stage: fit_embed_batch over batches of any size, then
// finish_rows after fit_end, gives the bytes of fit() over all then embed() of the selected.
TEST(HashedEmbedder, EmbedWhileFittingEqualsFitThenEmbed) {
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) {
    std::string t = "doc " + std::to_string(i % 37) + " common words here";
    for (int j = 0; j < i % 6; ++j) t += " w" + std::to_string((i * 7 + j) % 23);
    texts.push_back(i % 50 == 0 ? std::string() : t);  // some empty texts too
  }
  const std::vector<std::string_view> views(texts.begin(), texts.end());
  auto comm = cluster::make_serial_comm();
  HashedEmbedder whole(64, 3);
  whole.fit(*comm, batch_of(views));
  std::vector<std::string_view> chosen;
  for (size_t i = 0; i < views.size(); ++i)
    if (i % 3 != 1) chosen.push_back(views[i]);  // the others only count for the idf
  std::vector<float> want(chosen.size() * 64);
  whole.embed(batch_of(chosen), want.data());
  for (size_t per : {1, 7, 64, 1000}) {
    HashedEmbedder streamed(64, 3);
    ASSERT_TRUE(streamed.embeds_while_fitting());
    std::vector<float> got;
    streamed.fit_begin();
    for (size_t lo = 0; lo < views.size(); lo += per) {
      const size_t hi = std::min(views.size(), lo + per);
      DocBatch part;
      std::vector<int64_t> selected;
      for (size_t i = lo; i < hi; ++i) {
        part.texts.push_back(views[i]);
        part.rows.push_back(static_cast<int64_t>(i));
        if (i % 3 != 1) selected.push_back(static_cast<int64_t>(i - lo));
      }
      std::vector<float> rows(selected.size() * 64);
      streamed.fit_embed_batch(part, selected, rows.data());
      got.insert(got.end(), rows.begin(), rows.end());
    }
    streamed.fit_end(*comm);
    streamed.finish_rows(got.data(), static_cast<int64_t>(got.size() / 64));
    EXPECT_EQ(streamed.idf(), whole.idf()) << per << " documents per batch";
    EXPECT_EQ(got, want) << per << " documents per batch";
  }
  HashedEmbedder bad(64, 3);
  bad.fit_begin();
  std::vector<float> rows(2 * 64);
  EXPECT_THROW(bad.fit_embed_batch(batch_of(views), {5, 5}, rows.data()), std::invalid_argument);
  EXPECT_FALSE(make_embedder({"precomputed", 0, 0, "", "embeddings", "vec"})->embeds_while_fitting());
}

}  // namespace
}  // namespace sf::stages::embed
