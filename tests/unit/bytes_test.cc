#include "cluster/bytes.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace sf::cluster {
namespace {

struct Pair {
  int32_t a;
  double b;
};

TEST(Bytes, RoundTripsValuesArraysAndStrings) {
  Bytes msg;
  ByteWriter out(msg);
  out.value<int32_t>(-7);
  out.value<uint64_t>(0x0123456789abcdefULL);
  out.value(Pair{3, 2.5});
  const std::vector<float> xs = {1.5f, -2.0f, 3.25f};
  out.array(xs.data(), xs.size());
  out.string("hello");
  out.string("");
  out.array(xs.data(), 0);  // empty array: nothing written
  EXPECT_EQ(msg.size(), 4u + 8u + sizeof(Pair) + 12u + (4u + 5u) + 4u);

  ByteReader in(msg, "test");
  EXPECT_EQ(in.value<int32_t>(), -7);
  EXPECT_EQ(in.value<uint64_t>(), 0x0123456789abcdefULL);
  const auto p = in.value<Pair>();
  EXPECT_EQ(p.a, 3);
  EXPECT_EQ(p.b, 2.5);
  std::vector<float> back(3);
  in.array(back.data(), back.size());
  EXPECT_EQ(back, xs);
  EXPECT_FALSE(in.done());
  EXPECT_EQ(in.string(), "hello");
  EXPECT_EQ(in.string(), "");
  EXPECT_TRUE(in.done());
  EXPECT_EQ(in.remaining(), 0u);
}

TEST(Bytes, WriterAppendsToExistingBytes) {
  Bytes msg = {'x'};
  ByteWriter(msg).value<uint8_t>(9);
  ASSERT_EQ(msg.size(), 2u);
  EXPECT_EQ(msg[0], 'x');
  EXPECT_EQ(msg[1], 9);
}

// The error names the message, the offset and the sizes, and a failed read consumes nothing.
TEST(Bytes, TruncatedReadThrowsNamingTheMessageAndOffset) {
  Bytes msg;
  ByteWriter(msg).value<int32_t>(1);
  msg.push_back(0);  // 5 bytes
  ByteReader in(msg, "tier plan");
  EXPECT_EQ(in.value<int32_t>(), 1);
  try {
    (void)in.value<int32_t>();
    FAIL() << "expected a throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "tier plan: message truncated: 4 bytes wanted at offset 4 of 5");
  }
  EXPECT_EQ(in.offset(), 4u);
  EXPECT_EQ(in.remaining(), 1u);
  EXPECT_EQ(in.value<uint8_t>(), 0);
  EXPECT_TRUE(in.done());
}

TEST(Bytes, TruncatedStringAndArrayThrow) {
  Bytes msg;
  ByteWriter out(msg);
  out.string("abcdef");
  msg.resize(msg.size() - 1);
  ByteReader s(msg, "names");
  EXPECT_THROW((void)s.string(), std::runtime_error);

  Bytes three(3 * sizeof(float));
  ByteReader a(three, "floats");
  std::vector<float> four(4);
  EXPECT_THROW(a.array(four.data(), four.size()), std::runtime_error);
  EXPECT_EQ(a.offset(), 0u);
}

// A length read from a corrupt message must not wrap count * size past the bounds check.
TEST(Bytes, HugeCountDoesNotOverflowTheBoundsCheck) {
  Bytes msg(64);
  ByteReader in(msg, "shard");
  const size_t huge = std::numeric_limits<size_t>::max() / 8 + 2;  // huge * 8 wraps to 8
  EXPECT_THROW((void)in.take(huge, 8), std::runtime_error);
  EXPECT_THROW((void)in.take(std::numeric_limits<size_t>::max()), std::runtime_error);
  EXPECT_EQ(in.take(0, 8), msg.data());
  EXPECT_EQ(in.offset(), 0u);
}

}  // namespace
}  // namespace sf::cluster
