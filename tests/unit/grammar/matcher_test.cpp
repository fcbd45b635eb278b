#include "grammar/matcher.h"

#include <gtest/gtest.h>

#include "grammar/grammar.h"

namespace ember::grammar {
namespace {

ByteClass one(char c) {
  ByteClass b;
  b.add(uint8_t(c));
  return b;
}

// root ::= "a" root | "b"   (a*b)
std::shared_ptr<const Grammar> a_star_b() {
  auto g = std::make_shared<Grammar>();
  const uint32_t root = g->add_rule("root");
  g->add_alternative(root, {g->bytes(one('a')), Grammar::ref(root)});
  g->add_alternative(root, {g->bytes(one('b'))});
  g->set_root(root);
  EXPECT_TRUE(g->validate().ok());
  return g;
}

TEST(Matcher, AcceptsSentencesAndRejectsOthers) {
  auto g = a_star_b();
  Matcher m(g);
  EXPECT_FALSE(m.is_complete());
  EXPECT_TRUE(m.can_accept("aaab"));
  EXPECT_FALSE(m.can_accept("aac"));
  EXPECT_FALSE(m.can_accept("ba"));
  EXPECT_TRUE(m.accept("aa"));
  EXPECT_FALSE(m.is_complete());
  EXPECT_FALSE(m.accept("ab!"));  // rejected: state unchanged
  EXPECT_TRUE(m.accept("b"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.can_continue());
  EXPECT_FALSE(m.can_accept("a"));
  m.reset();
  EXPECT_FALSE(m.is_complete());
  EXPECT_TRUE(m.next_bytes().has('a'));
  EXPECT_TRUE(m.next_bytes().has('b'));
  EXPECT_FALSE(m.next_bytes().has('c'));
}

TEST(Matcher, NullableRulesAndAmbiguity) {
  // root ::= x x ; x ::= "" | "a"   -> "", "a", "aa"
  auto g = std::make_shared<Grammar>();
  const uint32_t root = g->add_rule("root"), x = g->add_rule("x");
  g->add_alternative(x, {});
  g->add_alternative(x, {g->bytes(one('a'))});
  g->add_alternative(root, {Grammar::ref(x), Grammar::ref(x)});
  g->set_root(root);
  ASSERT_TRUE(g->validate().ok());
  Matcher m(g);
  EXPECT_TRUE(m.is_complete());
  EXPECT_TRUE(m.accept("a"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_TRUE(m.can_continue());
  EXPECT_TRUE(m.accept("a"));
  EXPECT_TRUE(m.is_complete());
  EXPECT_FALSE(m.can_accept("a"));
}

TEST(Grammar, LeftRecursionIsRejected) {
  // root ::= e ; e ::= e "+" "1" | "1"
  auto g = std::make_shared<Grammar>();
  const uint32_t root = g->add_rule("root"), e = g->add_rule("e");
  g->add_alternative(root, {Grammar::ref(e)});
  g->add_alternative(e, {Grammar::ref(e), g->bytes(one('+')), g->bytes(one('1'))});
  g->add_alternative(e, {g->bytes(one('1'))});
  g->set_root(root);
  const Status st = g->validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("without consuming"), std::string::npos) << st.message();
}

TEST(Grammar, NoFiniteSentenceIsRejected) {
  auto g = std::make_shared<Grammar>();
  const uint32_t root = g->add_rule("root");
  g->add_alternative(root, {g->bytes(one('a')), Grammar::ref(root)});
  g->set_root(root);
  const Status st = g->validate();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("no finite"), std::string::npos) << st.message();
}

TEST(Grammar, TextDump) {
  auto g = a_star_b();
  EXPECT_EQ(g->to_text(), "root ::= [a] root | [b]\n");
}

TEST(Matcher, DepthLimitRejectsDeepNesting) {
  // root ::= "(" root ")" | "x"
  auto g = std::make_shared<Grammar>();
  const uint32_t root = g->add_rule("root");
  g->add_alternative(root, {g->bytes(one('(')), Grammar::ref(root), g->bytes(one(')'))});
  g->add_alternative(root, {g->bytes(one('x'))});
  g->set_root(root);
  ASSERT_TRUE(g->validate().ok());
  MatcherLimits limits;
  limits.max_depth = 10;
  Matcher m(g, limits);
  EXPECT_TRUE(m.accept(std::string(5, '(')));
  EXPECT_FALSE(m.accept(std::string(20, '(')));
  EXPECT_TRUE(m.accept("x)))))"));
  EXPECT_TRUE(m.is_complete());
}

}  // namespace
}  // namespace ember::grammar
