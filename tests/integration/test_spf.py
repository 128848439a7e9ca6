"""greylist_admin spf against the loopback unbound that serves the SPF tests' zone, spf-test.
(tests/dns-zones/spf.conf; ctest starts it and names it in GREY_TEST_DNS): the result as RFC 7208
names it, the reason, the explanation of a fail, and exit 2 for bad arguments only."""
import os
import subprocess
import unittest

ADMIN = os.path.abspath(os.environ.get("GREY_GREYLIST_ADMIN", "build/dev/examples/greylist_admin"))
DNS = os.environ.get("GREY_TEST_DNS", "")


def spf(*args, resolver=True):
    extra = ["--resolver", DNS] if resolver else []
    return subprocess.run([ADMIN, "spf", *args, *extra], capture_output=True, text=True, timeout=30)


@unittest.skipUnless(DNS, "GREY_TEST_DNS must name the test unbound (ctest sets it)")
class SpfCommand(unittest.TestCase):
    def check(self, args, expected):
        r = spf(*args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, expected)

    def test_each_result_is_printed_with_its_reason(self):
        self.check(["192.0.2.200", "alice@ip.spf-test", "mail.example.org"],
                   "pass (ip4:192.0.2.0/24 matched in ip.spf-test)\n")
        self.check(["2001:db8:1::25", "alice@ip.spf-test"], "pass (ip6:2001:db8:1::/48 matched in ip.spf-test)\n")
        self.check(["198.51.100.1", "alice@ip.spf-test"], "fail (-all matched in ip.spf-test)\n")
        self.check(["192.0.2.2", "bob@qualifiers.spf-test"], "softfail (~ip4:192.0.2.2 matched in qualifiers.spf-test)\n")
        self.check(["192.0.2.6", "bob@qualifiers.spf-test"], "neutral (no mechanism matched in qualifiers.spf-test)\n")
        self.check(["192.0.2.1", "bob@missing.spf-test"], "none (no such domain missing.spf-test)\n")
        self.check(["192.0.2.50", "bob@limit11.spf-test"], "permerror (more than 10 DNS lookups)\n")
        # refused.spf-test's server refuses: a DNS error, not a fact about the name.
        temp = spf("192.0.2.4", "bob@include-temp.spf-test")
        self.assertEqual(temp.returncode, 0, temp.stderr)
        self.assertRegex(temp.stdout, r"^temperror \(include of refused\.spf-test: DNS [^\n]*\)\n$")

    def test_a_fail_comes_with_the_domains_explanation(self):
        self.check(["192.0.2.9", "bob@exp.spf-test"],
                   "fail (-all matched in exp.spf-test)\nexplanation: 192.0.2.9 may not send for exp.spf-test\n")

    def test_the_null_sender_is_checked_as_postmaster_at_the_helo_name(self):
        self.check(["192.0.2.77", "", "helo.spf-test"], "pass (ip4:192.0.2.77 matched in helo.spf-test)\n")
        self.check(["192.0.2.78", "", "helo.spf-test"], "fail (-all matched in helo.spf-test)\n")

    def test_bad_arguments_exit_2(self):
        for args in (["not-an-address", "bob@ip.spf-test"], ["192.0.2.1"], ["192.0.2.1", "bob@ip.spf-test", "--resolver", "dns.example"]):
            r = spf(*args, resolver=False)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
