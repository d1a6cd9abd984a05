"""URL normalisation: the tricks a user or a page can play on a filter, and URLs that must be refused."""
from __future__ import annotations

import time

import pytest

from civicaup.channels.web.url import MAX_URL_CHARS, NormalURL, normalise_url
from civicaup.errors import BadURLError, InputError


def test_a_plain_url_is_split_into_its_parts() -> None:
    u = normalise_url("https://www.example.com:8443/a/b?x=1#frag")
    assert (u.scheme, u.host, u.port, u.path, u.query, u.is_ip) == ("https", "www.example.com", 8443, "/a/b", "x=1",
                                                                  False)
    assert u.original == "https://www.example.com:8443/a/b?x=1#frag"


@pytest.mark.parametrize("text, scheme", [
    ("http://example.com/", "http"), ("https://example.com/", "https"), ("ftp://example.com/", "ftp"),
    ("ws://example.com/", "ws"), ("wss://example.com/", "wss"), ("HTTPS://example.com/", "https"),
])
def test_the_supported_schemes_are_accepted_in_any_case(text: str, scheme: str) -> None:
    assert normalise_url(text).scheme == scheme


def test_a_url_without_a_scheme_is_taken_as_http() -> None:
    u = normalise_url("example.com/path/to?q=1")
    assert (u.scheme, u.host, u.path, u.query) == ("http", "example.com", "/path/to", "q=1")


def test_a_scheme_less_url_may_carry_another_url_in_its_path_or_query() -> None:
    u = normalise_url("example.com/go?to=http://elsewhere.example/")
    assert (u.host, u.query) == ("example.com", "to=http://elsewhere.example/")


def test_a_scheme_less_url_with_a_port_and_path_is_http_on_that_port() -> None:
    u = normalise_url("example.com:8080/path")
    assert (u.scheme, u.host, u.port, u.path) == ("http", "example.com", 8080, "/path")


def test_a_squid_connect_target_is_https_to_that_host() -> None:
    u = normalise_url("secure.example.com:443")
    assert (u.scheme, u.host, u.port, u.path) == ("https", "secure.example.com", None, "/")


def test_a_connect_target_on_another_port_keeps_the_port() -> None:
    assert normalise_url("chat.example.com:5222").port == 5222


def test_a_connect_target_can_be_an_ipv6_literal() -> None:
    u = normalise_url("[2001:DB8::1]:443")
    assert (u.host, u.is_ip, u.scheme) == ("2001:db8::1", True, "https")


def test_the_default_port_of_the_scheme_becomes_none() -> None:
    assert normalise_url("http://example.com:80/").port is None
    assert normalise_url("https://example.com:443/").port is None
    assert normalise_url("ftp://example.com:21/").port is None


def test_userinfo_cannot_disguise_the_real_host() -> None:
    u = normalise_url("http://www.city.gov@evil.com/login")
    assert u.host == "evil.com"
    assert "city.gov" not in u.host_path()


def test_userinfo_with_a_password_and_several_at_signs_is_dropped() -> None:
    u = normalise_url("http://user:pa@ss@www.city.gov:pw@evil.com:81/x")
    assert (u.host, u.port, u.path) == ("evil.com", 81, "/x")


def test_mixed_case_hosts_are_lowercased_but_paths_keep_their_case() -> None:
    u = normalise_url("HTTP://WWW.Example.COM/Some/Path")
    assert (u.host, u.path) == ("www.example.com", "/Some/Path")


def test_trailing_dots_on_the_host_are_removed() -> None:
    assert normalise_url("http://example.com./").host == "example.com"
    assert normalise_url("http://example.com../x").host == "example.com"


def test_a_percent_encoded_host_is_decoded() -> None:
    assert normalise_url("http://%77%77%77.example.com/").host == "www.example.com"


@pytest.mark.parametrize("dot", ["\u3002", "\uff0e", "\uff61"])
def test_unicode_full_stops_in_the_host_count_as_dots(dot: str) -> None:
    assert normalise_url(f"http://www{dot}example{dot}com/").host == "www.example.com"


def test_an_internationalised_host_becomes_punycode() -> None:
    assert normalise_url("http://bücher.de").host == "xn--bcher-kva.de"
    assert normalise_url("http://BÜCHER.de").host == "xn--bcher-kva.de"


def test_a_valid_punycode_host_is_kept() -> None:
    assert normalise_url("http://XN--BCHER-KVA.de/").host == "xn--bcher-kva.de"


@pytest.mark.parametrize("text, ip", [
    ("http://127.0.0.1/", "127.0.0.1"), ("http://0x7f.1/", "127.0.0.1"), ("http://2130706433/", "127.0.0.1"),
    ("http://0177.0.0.1/", "127.0.0.1"), ("http://0x7f.0x0.0x0.0x1/", "127.0.0.1"), ("2130706433", "127.0.0.1"),
    ("http://１２７.0.0.1/", "127.0.0.1"),
])
def test_every_numeric_form_of_an_ipv4_address_becomes_dotted_decimal(text: str, ip: str) -> None:
    u = normalise_url(text)
    assert (u.host, u.is_ip) == (ip, True)


def test_an_ipv6_literal_is_compressed_and_unbracketed() -> None:
    u = normalise_url("http://[2001:0DB8:0000:0000:0000:0000:0000:0001]:8080/x")
    assert (u.host, u.port, u.is_ip) == ("2001:db8::1", 8080, True)


def test_backslashes_count_as_slashes_for_web_schemes() -> None:
    u = normalise_url("http:\\\\evil.com\\a\\b")
    assert (u.host, u.path) == ("evil.com", "/a/b")


def test_a_scheme_relative_url_is_taken_as_http() -> None:
    assert normalise_url("//evil.com/x").host == "evil.com"


def test_tabs_and_newlines_inside_a_url_are_ignored() -> None:
    u = normalise_url("ht\ttp://ev\nil.co\rm/pa\tth")
    assert (u.scheme, u.host, u.path) == ("http", "evil.com", "/path")


def test_surrounding_spaces_and_controls_are_ignored() -> None:
    assert normalise_url("  \x00http://example.com/ \n").host == "example.com"


def test_dot_segments_in_the_path_are_resolved_even_when_encoded() -> None:
    assert normalise_url("http://example.com/a/b/../c/./d").path == "/a/c/d"
    assert normalise_url("http://example.com/a/%2e%2E/b/%2e/c").path == "/b/c"


def test_percent_encoded_unreserved_characters_are_decoded_and_hex_uppercased() -> None:
    u = normalise_url("http://example.com/%7euser/%41%62%2d%5f%2e/a%2fb%3a?q=%7a%2f%e2%82%ac")
    assert u.path == "/~user/Ab-_./a%2Fb%3A"
    assert u.query == "q=z%2F%E2%82%AC"


def test_non_ascii_paths_are_percent_encoded_in_uppercase_hex() -> None:
    assert normalise_url("http://example.com/é").path == "/%C3%A9"


def test_an_empty_path_becomes_a_slash_and_an_empty_query_vanishes() -> None:
    u = normalise_url("http://example.com?")
    assert (u.path, u.query) == ("/", "")


def test_the_fragment_is_dropped() -> None:
    assert normalise_url("http://example.com/a#b?c").host_path() == "example.com/a"


def test_host_path_is_the_form_squidguard_lists_use() -> None:
    assert normalise_url("https://Example.com:8443/some/path?q=1").host_path() == "example.com/some/path?q=1"
    assert normalise_url("https://example.com").host_path() == "example.com/"


def test_labels_run_from_the_host_to_the_top_level_domain() -> None:
    assert normalise_url("http://a.b.example.com/").labels() == ["a.b.example.com", "b.example.com", "example.com",
                                                                "com"]


def test_an_ip_address_has_no_parent_domains() -> None:
    assert normalise_url("http://10.1.2.3/").labels() == []


def test_a_normal_url_is_immutable_and_comparable() -> None:
    a, b = normalise_url("http://EXAMPLE.com"), normalise_url("http://example.com/")
    assert (a.host, a.path) == (b.host, b.path)
    with pytest.raises(AttributeError):
        a.host = "other.com"  # type: ignore[misc]
    assert isinstance(a, NormalURL)


def test_a_url_of_several_thousand_characters_is_normalised_quickly() -> None:
    text = "http://example.com/" + "segment/" * 800 + "?" + "k=v&" * 300
    assert len(text) > 5000
    started = time.perf_counter()
    for _ in range(100):
        u = normalise_url(text)
    assert time.perf_counter() - started < 2.0  # generous: ~0.1 ms each on a laptop
    assert u.path.count("/") == 801 and u.query.startswith("k=v&")


def test_a_url_just_under_the_cap_is_accepted() -> None:
    text = "http://example.com/" + "a" * (MAX_URL_CHARS - 19)
    assert len(text) == MAX_URL_CHARS
    assert normalise_url(text).host == "example.com"


def test_a_url_over_the_cap_is_refused() -> None:
    with pytest.raises(BadURLError, match="limit"):
        normalise_url("http://example.com/" + "a" * MAX_URL_CHARS)


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("   \t\n", "empty"),
    ("http://exa mple.com/", "space in host"),
    ("http://", "no host"),
    ("http:///", "no host"),
    ("http://./", "no host"),
    ("/only/a/path", "no host"),
    ("ht!tp://::::/", "scheme"),
    ("javascript:alert(1)", "unsupported URL scheme 'javascript:'"),
    ("data:text/html,hi", "unsupported URL scheme"),
    ("file:///etc/passwd", "unsupported URL scheme"),
    ("mailto:someone@example.com", "unsupported URL scheme"),
    ("http://xn--zz.com/", "invalid IDNA"),
    ("http://xn--abc-.com/", "invalid IDNA"),
    ("http://a\u200db.com/", "not a valid URL"),
    ("http://a..b.com/", "empty label"),
    ("http://a$b.com/", "invalid characters"),
    ("http://" + "a" * 64 + ".com/", "longer than 63"),
    ("http://" + "a." * 130 + "com/", "longer than 253"),
    ("http://example.com:99999/", "bad port"),
    ("http://www.1.2.3.4/", "not an IPv4 address"),
    ("http://[1:2]/", "not a valid URL"),
])
def test_bad_urls_are_refused_with_a_one_line_message_naming_the_problem(text: str, words: str) -> None:
    with pytest.raises(BadURLError) as info:
        normalise_url(text)
    message = str(info.value)
    assert words in message
    assert "\n" not in message and len(message) < 300


def test_a_bad_url_is_an_input_error_for_the_cli_and_api() -> None:
    with pytest.raises(InputError):
        normalise_url("javascript:void(0)")


def test_a_huge_bad_url_still_gives_a_short_message() -> None:
    with pytest.raises(BadURLError) as info:
        normalise_url("http://" + "a b" * 10_000 + ".com/")
    assert len(str(info.value)) < 300


def test_something_that_is_not_text_is_refused() -> None:
    with pytest.raises(BadURLError):
        normalise_url(None)  # type: ignore[arg-type]
