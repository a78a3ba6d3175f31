#include <gtest/gtest.h>

#include "duet/net/address.hpp"
#include "duet/net/error.hpp"
#include "duet/net/resolve_literal.hpp"

using namespace duet::net;

TEST(Address, RoundTripsCanonicalText) {
  for (const char* text : {"0.0.0.0", "198.18.0.1", "255.255.255.255", "::", "::1", "fd00::1", "fd00:18:2::2",
                           "fe80::1%3", "::ffff:198.18.0.1", "2001:db8::ff00:42:8329"}) {
    auto a = Address::parse(text);
    ASSERT_TRUE(a) << text;
    EXPECT_EQ(a->to_string(), text);
  }
}

TEST(Address, PrintsRfc5952Form) {
  EXPECT_EQ(Address::parse("FD00:0:0:0:0:0:0:0001")->to_string(), "fd00::1");
  EXPECT_EQ(Address::parse("2001:db8:0:0:1:0:0:1")->to_string(), "2001:db8::1:0:0:1");
}

TEST(Address, RejectsMalformedText) {
  for (const char* text : {"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "fd00:::1", "fd00::1%", "fd00::1%eth0", "gggg::1",
                           "[::1]", " 1.2.3.4", "1.2.3.4%1"}) {
    EXPECT_FALSE(Address::parse(text)) << text;
  }
  EXPECT_EQ(Address::parse(std::string(500, '1')).error(), make_error_code(ParseError::bad_address));
}

TEST(Address, ClassifiesSpecialAddresses) {
  EXPECT_TRUE(Address::parse("0.0.0.0")->is_unspecified());
  EXPECT_TRUE(Address::parse("::")->is_unspecified());
  EXPECT_TRUE(Address::parse("127.3.4.5")->is_loopback());
  EXPECT_TRUE(Address::parse("::1")->is_loopback());
  EXPECT_TRUE(Address::parse("::ffff:127.0.0.1")->is_loopback());
  EXPECT_TRUE(Address::parse("fe80::1")->is_link_local());
  EXPECT_FALSE(Address::parse("fd00::1")->is_link_local());
  auto mapped = Address::parse("::ffff:198.18.0.1");
  EXPECT_TRUE(mapped->is_v4_mapped());
  EXPECT_EQ(mapped->unmapped(), *Address::parse("198.18.0.1"));
  EXPECT_EQ(Address::parse("198.18.0.1")->v4_mapped(), *mapped);
  EXPECT_EQ(Address::any(Family::v6).to_string(), "::");
  EXPECT_EQ(Address::loopback(Family::v4).to_string(), "127.0.0.1");
}

TEST(Address, OrdersV4BeforeV6AndByBytes) {
  EXPECT_LT(*Address::parse("198.18.0.1"), *Address::parse("198.18.0.2"));
  EXPECT_LT(*Address::parse("255.255.255.255"), *Address::parse("::"));
  EXPECT_NE(*Address::parse("fe80::1%1"), *Address::parse("fe80::1%2"));
}

TEST(Endpoint, RoundTripsBothFamilies) {
  for (const char* text : {"198.18.0.1:1194", "[fd00::1]:443", "[::]:0", "[fe80::1%2]:53", "0.0.0.0:65535"}) {
    auto e = Endpoint::parse(text);
    ASSERT_TRUE(e) << text;
    EXPECT_EQ(e->to_string(), text);
  }
}

TEST(Endpoint, ExplainsWhatIsWrong) {
  EXPECT_EQ(Endpoint::parse("198.18.0.1").error(), make_error_code(ParseError::missing_port));
  EXPECT_EQ(Endpoint::parse("[fd00::1]").error(), make_error_code(ParseError::missing_port));
  EXPECT_EQ(Endpoint::parse("198.18.0.1:65536").error(), make_error_code(ParseError::bad_port));
  EXPECT_EQ(Endpoint::parse("198.18.0.1:-1").error(), make_error_code(ParseError::bad_port));
  EXPECT_EQ(Endpoint::parse("198.18.0.1:").error(), make_error_code(ParseError::bad_port));
  // Unbracketed IPv6 with a port is ambiguous.
  EXPECT_EQ(Endpoint::parse("fd00::1:80").error(), make_error_code(ParseError::bad_address));
  EXPECT_EQ(Endpoint::parse("[198.18.0.1]:80").error(), make_error_code(ParseError::bad_address));
  EXPECT_EQ(Endpoint::parse("[fd00::1]x80").error(), make_error_code(ParseError::bad_address));
  EXPECT_FALSE(Endpoint::parse("[fd00::1:80"));
  EXPECT_FALSE(Endpoint::parse(""));
}

TEST(Prefix, ParsesContainsAndNormalises) {
  auto p = Prefix::parse("198.18.2.7/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->to_string(), "198.18.2.7/24");
  EXPECT_EQ(p->network().to_string(), "198.18.2.0/24");
  EXPECT_TRUE(p->contains(*Address::parse("198.18.2.200")));
  EXPECT_FALSE(p->contains(*Address::parse("198.18.3.1")));
  EXPECT_FALSE(p->contains(*Address::parse("::ffff:198.18.2.1")));  // other family
  auto v6 = Prefix::parse("fd00:9::/64");
  EXPECT_TRUE(v6->contains(*Address::parse("fd00:9::1")));
  EXPECT_FALSE(v6->contains(*Address::parse("fd00:a::1")));
  EXPECT_EQ(Prefix::parse("fd00::1:2:3:4/61")->network().to_string(), "fd00::/61");
  EXPECT_EQ(Prefix::parse("0.0.0.0/0")->network().to_string(), "0.0.0.0/0");
  EXPECT_TRUE(Prefix::parse("::/0")->contains(*Address::parse("fd00::1")));
  EXPECT_EQ(Prefix::parse("198.18.0.1")->length, 32);
  EXPECT_EQ(Prefix::parse("fd00::1")->length, 128);
}

TEST(Prefix, RejectsBadLengths) {
  EXPECT_EQ(Prefix::parse("198.18.0.0/33").error(), make_error_code(ParseError::bad_prefix_length));
  EXPECT_EQ(Prefix::parse("fd00::/129").error(), make_error_code(ParseError::bad_prefix_length));
  EXPECT_EQ(Prefix::parse("fd00::/").error(), make_error_code(ParseError::bad_prefix_length));
  EXPECT_EQ(Prefix::parse("fd00::/6x").error(), make_error_code(ParseError::bad_prefix_length));
  EXPECT_FALSE(Prefix::parse("nonsense/8"));
}

TEST(Errors, CarryPosixMeaningAndNames) {
  EXPECT_EQ(errc(std::errc::address_in_use).value(), EADDRINUSE);
  EXPECT_EQ(error_name(errc(std::errc::connection_refused)), "ECONNREFUSED");
  EXPECT_EQ(error_name(errc(std::errc::host_unreachable)), "EHOSTUNREACH");
  EXPECT_EQ(error_name({}), "ok");
  EXPECT_EQ(error_name(make_error_code(ResolveError::no_such_name)), "no such name");
  EXPECT_NE(make_error_code(ResolveError::timed_out), errc(std::errc::timed_out));
}

TEST(ResolveLiteral, AnswersWithoutAResolver) {
  ResolveHints passive{std::nullopt, true, SocketType::datagram};
  auto any = resolve_literal("", "1194", passive);
  ASSERT_TRUE(any && *any);
  ASSERT_EQ((*any)->size(), 2u);
  EXPECT_EQ((**any)[0].to_string(), "0.0.0.0:1194");  // glibc: IPv4 first for AI_PASSIVE
  EXPECT_EQ((**any)[1].to_string(), "[::]:1194");
  auto lo = resolve_literal("", "7", ResolveHints{});
  EXPECT_EQ((**lo)[0].to_string(), "[::1]:7");
  EXPECT_EQ((**lo)[1].to_string(), "127.0.0.1:7");
  auto v6only = resolve_literal("", "7", ResolveHints{Family::v6, true, SocketType::stream});
  ASSERT_EQ((*v6only)->size(), 1u);
  EXPECT_EQ((**v6only)[0].to_string(), "[::]:7");
  EXPECT_EQ(resolve_literal("198.18.0.1", "7", ResolveHints{Family::v6, false, SocketType::stream})->error(),
            make_error_code(ResolveError::no_data));
  EXPECT_EQ(resolve_literal("198.18.0.1", "http", ResolveHints{})->error(), make_error_code(ResolveError::bad_service));
  EXPECT_EQ(resolve_literal("x", "70000", ResolveHints{})->error(), make_error_code(ResolveError::bad_service));
  EXPECT_FALSE(resolve_literal("vpn.test", "1194", ResolveHints{}).has_value());
}

#include "duet/net/checksum.hpp"
#include "duet/net/ping.hpp"

TEST(IpPacket, InternetChecksumMatchesRfc1071Example) {
  // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2; the checksum is its complement.
  const std::uint8_t data[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ones_sum(data), 0xddf2u);
  EXPECT_EQ(internet_checksum(data), static_cast<std::uint16_t>(~0xddf2 & 0xffff));
  const auto echo = ipv4_icmp_echo(8, *Address::parse("198.18.0.1"), *Address::parse("198.18.0.2"), 1, 2);
  EXPECT_EQ(internet_checksum(std::span(echo).first(20)), 0) << "a header with its checksum sums to zero";
  EXPECT_EQ(internet_checksum(std::span(echo).subspan(20)), 0);
}
