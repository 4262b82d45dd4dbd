// MAC addresses as text: the form the daemons take on their command line and the control
// channel carries.
#include <gtest/gtest.h>

#include <splitnet/packet/ethernet.hpp>

namespace sp = splitnet::packet;

TEST(MacAddress, PrintsAndParsesBackExactly) {
    const auto m = sp::mac_address::from_u64(0x02a0'0bff'00c1);
    EXPECT_EQ(sp::to_string(m), "02:a0:0b:ff:00:c1");
    EXPECT_EQ(sp::parse_mac("02:a0:0b:ff:00:c1"), m);
    EXPECT_EQ(sp::parse_mac("2:A0:b:FF:0:c1"), m) << "short bytes and upper case";
}

TEST(MacAddress, RejectsMalformedText) {
    for (const char* bad :
         {"", "02:00:00:00:00", "02:00:00:00:00:00:00", "02:00:00:00:00:0g", "020:00:00:00:00:00",
          "02-00-00-00-00-00", "02:00:00:00:00:00:", "02::00:00:00:00", ":02:00:00:00:00:00"}) {
        EXPECT_FALSE(sp::parse_mac(bad).has_value()) << bad;
    }
}
