"""The hand-written man pages in dist/man against the programs' --help: every option (and
greylist_admin's every subcommand) that --help lists is described in the page, and the page
describes no option the program lacks. A flag added to a program fails this test until its page
says what it does. Then `man --warnings` must have nothing to say about the page."""
import os
import re
import shutil
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
MAN = os.path.join(HERE, "..", "..", "dist", "man")
PROGRAMS = {
    "greylist_server": os.environ.get("GREY_GREYLIST_SERVER", "build/dev/examples/greylist_server"),
    "greylist_admin": os.environ.get("GREY_GREYLIST_ADMIN", "build/dev/examples/greylist_admin"),
}


def help_text(program, *subcommand):
    return subprocess.run([PROGRAMS[program], *subcommand, "--help"], capture_output=True, text=True, timeout=30,
                          check=True).stdout


def help_options(text):
    """Long options in CLI11's --help: the first column of the Options: section."""
    return set(re.findall(r"^\s+(?:-\w,)?(--[a-z][a-z0-9-]*)", text, re.M))


def help_subcommands(text):
    section = text.split("Subcommands:", 1)[1] if "Subcommands:" in text else ""
    return set(re.findall(r"^\s+([a-z]+)\s", section, re.M))


def page(program):
    with open(os.path.join(MAN, program + ".8")) as f:
        return f.read()


def page_options(roff):
    """Options named in the page: roff spells each '-' of an option as '\\-'."""
    return {o.replace("\\-", "-") for o in re.findall(r"(\\-\\-[a-z](?:[a-z0-9]|\\-)*)", roff)}


class ManPages(unittest.TestCase):
    def check(self, program):
        text, roff = help_text(program), page(program)
        in_help, in_page = help_options(text), page_options(roff)
        # A subcommand's own options (greylist_admin spf --resolver) are the program's too.
        for sub in help_subcommands(text):
            in_help |= help_options(help_text(program, sub))
        self.assertTrue(in_help, "no options found in --help: has its format changed?")
        self.assertEqual(sorted(in_help - in_page), [],
                         f"options of {program} --help missing from dist/man/{program}.8")
        self.assertEqual(sorted(in_page - in_help), [],
                         f"dist/man/{program}.8 names options {program} does not have")
        # Each option has its own paragraph (.TP, then the option in bold).
        for option in in_help - {"--help"}:
            self.assertRegex(roff, r"\.TP\n\.B[IR]? " + re.escape(option.replace("-", "\\-")) + r"\b",
                             f"{option} has no .TP entry of its own in dist/man/{program}.8")
        return text, roff

    def test_greylist_server_page_describes_every_option(self):
        _, roff = self.check("greylist_server")
        self.assertIn(".SH POLICY SERVICE", roff)
        self.assertIn("check_policy_service inet:127.0.0.1:10023", roff)

    def test_greylist_admin_page_describes_every_option_and_subcommand(self):
        text, roff = self.check("greylist_admin")
        subcommands = help_subcommands(text)
        self.assertTrue(subcommands)
        for sub in subcommands:
            self.assertRegex(roff, r"\.TP\n\.BI? " + sub + r"\b", f"subcommand {sub} has no .TP entry")

    @unittest.skipUnless(shutil.which("man"), "man is not installed")
    def test_pages_format_without_warnings(self):
        for program in PROGRAMS:
            r = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, program + ".8")],
                               capture_output=True, text=True, timeout=60,
                               env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr.strip(), "", f"{program}.8: {r.stderr}")
            self.assertIn("NAME", r.stdout)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
