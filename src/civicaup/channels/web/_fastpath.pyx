# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The Squid helper's per-line path, compiled: a block of helper lines answered the way ``Helper._run``,
``State.miss``, ``State._decide``, ``State.signature`` and ``fasturl.fast_parts`` answer them in Python.

C-typed here: splitting the line, the canonical-URL fast path (exactly :func:`fasturl.fast_parts`'s
contract: the same parts, or a decline), the look-ups of the host, its parent domains and its URL-entry
candidates in the index's hash tables (:mod:`keyhash`: one pass over the bytes hashes every candidate),
the download type, the answer cache with its two generations, the signature, user and decision caches
(the State's own dicts), the answer bytes and the audit queue entry. Everything unusual goes back to the
Python methods, so the engine (``State.outcome``) stays the one place that decides: a URL the fast path
declines, percent-escapes or non-ASCII bytes (``State._decide``), a ``host/path?query`` longer than the
stack buffer (``State.signature``), a new set of lists (``State.signature_of``), a user not cached
(``State.user``), a decision not memoised (``State.outcome``), errors (``Helper._failed``), lines without
the concurrent protocol's fields (``Helper._odd_line``). The equivalence tests (tests/web/test_fastpath.py)
feed the same blocks through both paths and compare the answer bytes and the audit queue entries.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem, PyDict_SetItem
from cpython.list cimport PyList_Append
from cpython.long cimport PyLong_FromLongLong
from cpython.ref cimport PyObject, Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_AsUTF8AndSize, PyUnicode_DecodeASCII
from libc.stdint cimport uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memchr, memcmp, memcpy, memset

import sys

cdef uint64_t FNV_OFFSET = 0xCBF29CE484222325ULL
cdef uint64_t FNV_PRIME = 0x100000001B3ULL
cdef uint64_t GOLDEN = 0x9E3779B97F4A7C15ULL
cdef uint64_t B_START = 0x84222325CBF29CE4ULL
cdef uint64_t HOSTS_TWEAK = 0x5BD1E9955BD1E995ULL
cdef int MAX_SEEDS = 64
cdef Py_ssize_t MAX_LINE = 64 * 1024
cdef enum:
    MAX_IDS = 400  # set ids of one URL: its URL entries (www. and not) and its host's listed domains
    MEMO_SLOTS = 64  # recent memo hits a block remembers by the key's parts
    BUF = 2048  # host/path?query assembled on the stack up to this size, else in Python
cdef bint BIG_ENDIAN = sys.byteorder == "big"

# character classes of fasturl's regular expressions
cdef unsigned char HOST_CHAR[256]
cdef unsigned char PATH_CHAR[256]
cdef unsigned char QUERY_CHAR[256]


cdef void _classes():
    cdef int c
    for c in range(256):
        HOST_CHAR[c] = PATH_CHAR[c] = QUERY_CHAR[c] = 0
    for c in range(ord("a"), ord("z") + 1):
        HOST_CHAR[c] = PATH_CHAR[c] = QUERY_CHAR[c] = 1
    for c in range(ord("A"), ord("Z") + 1):
        PATH_CHAR[c] = QUERY_CHAR[c] = 1
    for c in range(ord("0"), ord("9") + 1):
        HOST_CHAR[c] = PATH_CHAR[c] = QUERY_CHAR[c] = 1
    for c in b".-":
        HOST_CHAR[c] = 1
    for c in b"-._~!$&()*+,;=:@/":
        PATH_CHAR[c] = QUERY_CHAR[c] = 1
    QUERY_CHAR[ord("?")] = 1


_classes()


# -- the key hash (keyhash.py is the reference) -------------------------------------------------------------


cdef struct Slot:
    uint64_t hash  # 0: empty
    uint32_t check
    uint32_t sid


cdef struct Lanes:
    uint64_t a
    uint64_t b


cdef inline uint64_t _fmix(uint64_t k) noexcept nogil:
    k ^= k >> 33
    k *= 0xFF51AFD7ED558CCDULL
    k ^= k >> 33
    k *= 0xC4CEB9FE1A85EC53ULL
    k ^= k >> 33
    return k


cdef inline Lanes _start(uint64_t seed) noexcept nogil:
    cdef Lanes h
    h.a = FNV_OFFSET ^ (seed * GOLDEN)
    h.b = B_START + seed * FNV_PRIME
    return h


cdef inline void _step(Lanes* h, unsigned char c) noexcept nogil:
    h.a = (h.a ^ c) * FNV_PRIME
    h.b = (h.b ^ c) * GOLDEN
    h.b = (h.b << 27) | (h.b >> 37)


cdef inline uint64_t _stored(Lanes* h) noexcept nogil:
    cdef uint64_t a = _fmix(h.a)
    return a if a != 0 else 1


cdef inline uint32_t _check(Lanes* h) noexcept nogil:
    return <uint32_t>(_fmix(h.b) >> 32)


cdef inline long long _probe(const Slot* table, uint64_t mask, Lanes* h) noexcept nogil:
    """The set id of the key hashed into *h*, -1 if it is not in the table."""
    cdef uint64_t want = _stored(h)
    cdef uint64_t i = want & mask
    while True:
        if table[i].hash == want:
            return table[i].sid if table[i].check == _check(h) else -1
        if table[i].hash == 0:
            return -1
        i = (i + 1) & mask


def key_hash(str key, int seed):
    """(stored hash, check) of one key (same as ``keyhash.key_hash``)."""
    cdef bytes raw = key.encode("ascii")
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(raw)
    cdef Py_ssize_t i
    cdef Lanes h = _start(<uint64_t>seed)
    for i in range(PyBytes_GET_SIZE(raw)):
        _step(&h, p[i])
    return _stored(&h), _check(&h)


def build_table(list keys, list set_ids):
    """(seed, table bytes) for *keys* and their set ids, as ``keyhash.build_table_python`` builds them
    (little-endian machines only: the table is stored little-endian)."""
    from civicaup.channels.web.keyhash import capacity

    if BIG_ENDIAN:
        raise ValueError("the compiled table builder runs on little-endian machines only")
    cdef Py_ssize_t n = len(keys), cap = capacity(n), i, k, j
    cdef uint64_t mask = <uint64_t>(cap - 1), want
    cdef const unsigned char* p
    cdef Py_ssize_t size
    for key in keys:
        if not (<str>key).isascii():
            raise ValueError(f"an index key is not ASCII: {key!r}")
    cdef bint clash
    cdef int seed
    cdef Lanes h
    cdef bytes out
    cdef Slot* slots
    if len(set_ids) != n:
        raise ValueError("one set id a key")
    for seed in range(MAX_SEEDS):
        out = PyBytes_FromStringAndSize(NULL, cap * sizeof(Slot))  # new, not shared yet: filled in place
        slots = <Slot*>PyBytes_AS_STRING(out)
        memset(slots, 0, cap * sizeof(Slot))
        clash = False
        for k in range(n):
            p = <const unsigned char*>PyUnicode_AsUTF8AndSize(keys[k], &size)  # ASCII: the str's own bytes
            h = _start(<uint64_t>seed)
            for j in range(size):
                _step(&h, p[j])
            want = _stored(&h)
            i = <Py_ssize_t>(want & mask)
            while slots[i].hash != 0:
                if slots[i].hash == want:
                    clash = True
                    break
                i = <Py_ssize_t>((i + 1) & mask)
            if clash:
                break  # two keys share a hash under this seed: try the next one
            slots[i].hash = want
            slots[i].check = _check(&h)
            slots[i].sid = <uint32_t>set_ids[k]
        if not clash:
            return seed, out
    raise ValueError(f"no seed in 0..{MAX_SEEDS - 1} gives distinct 64-bit hashes for these keys")


# -- the canonical-URL fast path (fasturl.fast_parts) -----------------------------------------------------


cdef extern from *:
    void __builtin_prefetch(const void* addr) nogil


cdef struct URL:
    int https  # scheme: 0 http, 1 https
    Py_ssize_t host0, host1
    Py_ssize_t path0, path1  # path0 < 0: no path ("/")
    Py_ssize_t query0, query1  # query0 < 0: no query ("")
    long port  # -1: none (or the scheme's default)
    bint is_ip


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return c >= 48 and c <= 57


cdef bint _ipv4(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """A dotted quad of canonical octets (fasturl's _IPV4_RE)."""
    cdef Py_ssize_t i = 0, start
    cdef int octets = 0, value
    while True:
        start = i
        value = 0
        while i < n and _digit(p[i]) and i - start < 3:
            value = value * 10 + (p[i] - 48)
            i += 1
        if i == start or value > 255 or (i - start > 1 and p[start] == 48):
            return False
        octets += 1
        if octets == 4:
            return i == n
        if i >= n or p[i] != 46:
            return False
        i += 1


cdef bint _host_ok(const unsigned char* p, URL* u) noexcept nogil:
    """fast_parts' host checks; sets is_ip."""
    cdef Py_ssize_t h0 = u.host0, h1 = u.host1, i, last = h0, label = 0, longest = 0
    if p[h0] == 46:
        return False
    for i in range(h0, h1):
        if p[i] == 46:
            if i + 1 < h1 and p[i + 1] == 46:
                return False
            if i - label - h0 > longest:
                longest = i - label - h0
            label = i + 1 - h0
            last = i + 1
    if h1 - label - h0 > longest:
        longest = h1 - label - h0
    if last >= h1:
        return False  # empty last label (a trailing dot)
    if p[last] >= 97 and p[last] <= 122:
        u.is_ip = False
        return not (h1 - h0 > 63 and longest > 63)
    u.is_ip = True
    return _ipv4(p + h0, h1 - h0)


cdef inline Py_ssize_t _port(const unsigned char* p, Py_ssize_t i, Py_ssize_t n, long* port) noexcept nogil:
    """The port number starting at p[i] (up to five digits, no leading zero) into *port*; returns where it
    ends, or -1 when no digit 1-9 starts there."""
    cdef Py_ssize_t d0 = i
    if i >= n or p[i] < 49 or p[i] > 57:
        return -1
    port[0] = 0
    while i < n and _digit(p[i]) and i - d0 < 5:
        port[0] = port[0] * 10 + (p[i] - 48)
        i += 1
    return i


cdef bint _parse(const unsigned char* p, Py_ssize_t n, URL* u) noexcept nogil:
    """fast_parts(text) is not None; fills *u* with its parts."""
    cdef Py_ssize_t i, d0
    cdef long port = -1
    u.path0 = u.path1 = u.query0 = u.query1 = -1
    if n >= 7 and memcmp(p, b"http://", 7) == 0:
        u.https = 0
        i = 7
    elif n >= 8 and memcmp(p, b"https://", 8) == 0:
        u.https = 1
        i = 8
    else:  # CONNECT host:port
        u.https = 1
        i = 0
        while i < n and HOST_CHAR[p[i]]:
            i += 1
        if i < 1 or i > 253 or i >= n or p[i] != 58:
            return False
        u.host0, u.host1 = 0, i
        i = _port(p, i + 1, n, &port)
        if i < 0 or i != n:
            return False
        return _finish(p, u, port)
    u.host0 = i
    while i < n and HOST_CHAR[p[i]]:
        i += 1
    u.host1 = i
    if i - u.host0 < 1 or i - u.host0 > 253:
        return False
    if i < n and p[i] == 58:  # ':' port
        i = _port(p, i + 1, n, &port)
        if i < 0:
            return False
    if i < n and p[i] == 47:  # '/' path
        u.path0 = i
        i += 1
        while i < n and PATH_CHAR[p[i]]:
            i += 1
        u.path1 = i
        for d0 in range(u.path0, u.path1 - 1):
            if p[d0] == 47 and p[d0 + 1] == 46:
                return False  # "." and ".." segments: the full parser resolves them
    if i < n and p[i] == 63:  # '?' query
        i += 1
        u.query0 = i
        while i < n and QUERY_CHAR[p[i]]:
            i += 1
        u.query1 = i
    if i != n:
        return False
    return _finish(p, u, port)


cdef inline bint _finish(const unsigned char* p, URL* u, long port) noexcept nogil:
    if not _host_ok(p, u):
        return False
    if port > 65535:
        return False
    if port == (443 if u.https else 80):
        port = -1
    u.port = port
    return True


def fast_parts(str text):
    """``fasturl.fast_parts`` computed by this module (for the tests): the parts, or None."""
    if not text.isascii():
        return None
    cdef bytes raw = text.encode("ascii")
    cdef URL u
    if not _parse(<const unsigned char*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), &u):
        return None
    return _parts_tuple(raw, &u)


cdef inline str _slice(bytes raw, Py_ssize_t a, Py_ssize_t b):
    return PyUnicode_DecodeASCII(PyBytes_AS_STRING(raw) + a, b - a, NULL)


cdef tuple _parts_tuple(bytes raw, URL* u):
    return ("https" if u.https else "http", _slice(raw, u.host0, u.host1), None if u.port < 0 else u.port,
            "/" if u.path0 < 0 else _slice(raw, u.path0, u.path1),
            "" if u.query0 < 0 else _slice(raw, u.query0, u.query1), bool(u.is_ip))


# -- one State's tables ------------------------------------------------------------------------------------


cdef class Tables:
    """What the compiled path reads of one State besides its caches: the hash tables of its index (domain
    keys and URL entries, :mod:`keyhash`), the hosts with URL entries and the engine's extension tables."""

    cdef const unsigned char[::1] domain_raw
    cdef const unsigned char[::1] url_raw
    cdef const Slot* domains
    cdef const Slot* urls
    cdef uint64_t domain_mask, url_mask
    cdef uint64_t domain_seed, url_seed
    cdef object url_hosts
    cdef bint has_urls
    cdef Slot* hosts  # the hosts with URL entries, hashed (built here from url_hosts; set id unused)
    cdef uint64_t hosts_mask
    cdef object no_signature
    cdef object software, media

    def __init__(self, domain_hashes, url_hashes, seeds, url_hosts, no_signature, software, media):
        if BIG_ENDIAN:
            raise ValueError("the compiled path reads the index's little-endian tables on little-endian "
                             "machines only")
        self.domain_raw = domain_hashes.cast("B") if isinstance(domain_hashes, memoryview) else domain_hashes
        self.url_raw = url_hashes.cast("B") if isinstance(url_hashes, memoryview) else url_hashes
        self.domain_mask = _mask(len(self.domain_raw))
        self.url_mask = _mask(len(self.url_raw))
        self.domains = <const Slot*>&self.domain_raw[0]
        self.urls = <const Slot*>&self.url_raw[0]
        self.domain_seed, self.url_seed = seeds
        self.url_hosts = url_hosts
        self.has_urls = len(url_hosts) > 0
        self.no_signature = no_signature
        self.software = software
        self.media = media
        self._hash_hosts()

    def __dealloc__(self):
        free(self.hosts)

    cdef void _hash_hosts(self) except *:
        from civicaup.channels.web.keyhash import capacity

        cdef Py_ssize_t cap = capacity(len(self.url_hosts)), j
        cdef uint64_t i, want
        cdef bytes raw
        cdef const unsigned char* p
        cdef Lanes h
        self.hosts = <Slot*>calloc(cap, sizeof(Slot))
        if self.hosts == NULL:
            raise MemoryError()
        self.hosts_mask = <uint64_t>(cap - 1)
        for host in self.url_hosts:
            raw = (<str>host).encode("ascii")
            p = <const unsigned char*>PyBytes_AS_STRING(raw)
            h = _start(self.url_seed ^ HOSTS_TWEAK)
            for j in range(PyBytes_GET_SIZE(raw)):
                _step(&h, p[j])
            want = _stored(&h)
            i = want & self.hosts_mask
            while self.hosts[i].hash != 0 and not (self.hosts[i].hash == want and self.hosts[i].check == _check(&h)):
                i = (i + 1) & self.hosts_mask
            self.hosts[i].hash = want
            self.hosts[i].check = _check(&h)

    cdef bint url_host(self, const unsigned char* host, Py_ssize_t n) noexcept:
        """Whether URL entries may be under *host* (``host in url_hosts``; a 96-bit hash, so a name not there
        is taken for one with odds of about 2**-80: it then costs a look-up that finds nothing, as every URL
        entry that is a prefix of ``host/...`` is under that host)."""
        cdef Lanes h = _start(self.url_seed ^ HOSTS_TWEAK)
        cdef Py_ssize_t j
        for j in range(n):
            _step(&h, host[j])
        return _probe(self.hosts, self.hosts_mask, &h) >= 0

    cdef Py_ssize_t domain_hits(self, const unsigned char* host, Py_ssize_t n, bint is_ip,
                                long long* out, Py_ssize_t room) noexcept:
        """Write the set ids of the host's key and its parent domains' keys to *out*, most specific first
        (what ``State._domain_signature`` reads from the trie); returns how many. One pass hashes them all."""
        cdef long long hits[130]
        cdef Py_ssize_t nh = 0, pos, j, a, k = 0
        cdef long long sid
        cdef Lanes h = _start(self.domain_seed)
        if is_ip:  # "!1.2.3.4." matches only itself
            _step(&h, 33)
            for a in range(n):
                _step(&h, host[a])
            _step(&h, 46)
            sid = _probe(self.domains, self.domain_mask, &h)
            if sid >= 0 and room > 0:
                out[0] = sid
                return 1
            return 0
        cdef Lanes keys[130]
        cdef Py_ssize_t nk = 0
        pos = n
        while pos > 0 and nk < 130:  # labels from the right: "com.", "com.example.", "com.example.www."
            j = pos - 1
            while j >= 0 and host[j] != 46:
                j -= 1
            for a in range(j + 1, pos):
                _step(&h, host[a])
            _step(&h, 46)
            keys[nk] = h
            __builtin_prefetch(&self.domains[_stored(&h) & self.domain_mask])  # the probes' misses overlap
            nk += 1
            pos = j
        for a in range(nk):
            sid = _probe(self.domains, self.domain_mask, &keys[a])
            if sid >= 0:
                hits[nh] = sid
                nh += 1
        while nh > 0 and k < room:
            nh -= 1
            out[k] = hits[nh]
            k += 1
        return k

    cdef Py_ssize_t url_hits(self, const unsigned char* hp, Py_ssize_t n, long long* out,
                             Py_ssize_t room) noexcept:
        """Write the set ids of the URL entries that are prefixes of *hp* (``host/path?query``) at a segment
        boundary to *out*, longest first (``State._url_sets``); returns how many (-1: more than *room*)."""
        cdef long long sid
        cdef Py_ssize_t i, nh = 0, k = 0
        cdef long long hits[256]
        cdef bint query = False
        cdef unsigned char c
        cdef Lanes h = _start(self.url_seed)
        for i in range(n):
            c = hp[i]
            _step(&h, c)
            if c == 63:
                query = True
            # a prefix of length i + 1 is a candidate at the end, after a '/', before '/' or '?', or
            # before '&' once in the query
            if i + 1 == n or c == 47 or hp[i + 1] == 47 or hp[i + 1] == 63 or (hp[i + 1] == 38 and query):
                sid = _probe(self.urls, self.url_mask, &h)
                if sid >= 0:
                    if nh == 256:
                        return -1
                    hits[nh] = sid
                    nh += 1
        if nh > room:
            return -1
        while nh > 0:
            nh -= 1
            out[k] = hits[nh]
            k += 1
        return k

    def lookup(self, st, str host, bint is_ip, str path="/", str query=""):
        """``State.signature(host, is_ip, path, query)`` by this module (for the tests)."""
        cdef bytes raw = host.encode("ascii")
        cdef bytes hp = (f"{host}{path}?{query}" if query else host + path).encode("ascii")
        cdef long long sids[MAX_IDS]
        cdef Py_ssize_t k = 0, got
        if host in self.url_hosts:
            got = self.url_hits(<const unsigned char*>PyBytes_AS_STRING(hp), PyBytes_GET_SIZE(hp), sids, MAX_IDS)
            if got < 0:
                raise ValueError("too many URL entries")
            k += got
        if host[:4] == "www." and host[4:] in self.url_hosts:
            got = self.url_hits(<const unsigned char*>PyBytes_AS_STRING(hp) + 4, PyBytes_GET_SIZE(hp) - 4,
                                sids + k, MAX_IDS - k)
            if got < 0:
                raise ValueError("too many URL entries")
            k += got
        k += self.domain_hits(<const unsigned char*>PyBytes_AS_STRING(raw), PyBytes_GET_SIZE(raw), is_ip,
                              sids + k, MAX_IDS - k)
        return _signature_of(st, self, sids, k, None)


cdef uint64_t _mask(Py_ssize_t size) except? 0:
    cdef Py_ssize_t slots = size // <Py_ssize_t>sizeof(Slot)
    if size % <Py_ssize_t>sizeof(Slot) or slots < 8 or slots & (slots - 1):
        raise ValueError("a hash table must have a power-of-two number of 16-byte slots")
    return <uint64_t>(slots - 1)


cdef object _signature_of(st, Tables t, long long* sids, Py_ssize_t k, dict sig_cache):
    """(number, signature) of the set ids, from the State's ``sig_cache`` or ``State.signature_of``."""
    if k == 0:
        return t.no_signature
    cdef tuple ids = PyTuple_New(k)
    cdef Py_ssize_t i
    for i in range(k):
        item = PyLong_FromLongLong(sids[i])
        Py_INCREF(item)
        PyTuple_SET_ITEM(ids, i, item)
    cdef PyObject* found = PyDict_GetItem(sig_cache if sig_cache is not None else st.sig_cache, ids)
    if found != NULL:
        return <object>found
    return st.signature_of(ids)


cdef str _SOFTWARE = "software"
cdef str _MEDIA = "media"
cdef str _NONE = ""


cdef str _ext_kind(Tables t, const unsigned char* p, Py_ssize_t a, Py_ssize_t b):
    """``squid_helper._ext_kind(path)`` for path p[a:b]: 'software', 'media' or ''."""
    cdef Py_ssize_t end = b, sep, dot, i
    cdef unsigned char low[64]
    while end > a and p[end - 1] == 47:  # rstrip("/")
        end -= 1
    sep = end - 1
    while sep >= a and p[sep] != 47:
        sep -= 1
    dot = end - 1
    while dot > sep and p[dot] != 46:
        dot -= 1
    if dot <= sep:
        return _NONE  # no '.' in the last segment
    i = sep + 1
    while i < dot and p[i] == 46:
        i += 1
    if i >= dot:
        return _NONE  # splitext: leading dots are not an extension
    if end - dot > 64:
        return _NONE  # longer than any extension in the tables
    for i in range(dot, end):
        low[i - dot] = p[i] + 32 if p[i] >= 65 and p[i] <= 90 else p[i]
    ext = PyUnicode_DecodeASCII(<const char*>low, end - dot, NULL)
    if ext in t.software:
        return _SOFTWARE
    if ext in t.media:
        return _MEDIA
    return _NONE


# -- deciding ------------------------------------------------------------------------------------------------


cdef class Context:
    """One block's view of a State: its tables and cache dicts, read once (within a block the State keeps
    the same dict objects: it clears them, never replaces them; only the answer cache's generations turn,
    and ``run`` turns them itself)."""

    cdef object st
    cdef Tables t
    cdef dict users, memo, sig_cache, fresh, stale
    cdef bint memo_enabled
    cdef list recent  # MEMO_SLOTS recent memo hits: (sig_no, ext, roles, granted, work, outcome, answer if allow)

    def __init__(self, st):
        self.st = st
        self.t = st.fast
        self.users = st.users
        self.memo = st.memo
        self.sig_cache = st.sig_cache
        self.fresh = st.fresh
        self.stale = st.stale
        self.memo_enabled = st.memo_enabled
        self.recent = [None] * MEMO_SLOTS

    cdef object memo_get(self, long sig_no, str ext, roles, granted, work):
        """``State.memo.get((sig_no, ext, roles, granted, work))``, through a small table of recent hits that
        compares the key's parts instead of building and hashing the tuple; returns the recent entry or the
        outcome, None on a miss."""
        cdef Py_ssize_t slot = <Py_ssize_t>((<unsigned long>sig_no * 40503UL + (<unsigned long><Py_ssize_t><PyObject*>ext >> 4)
                                             + (1 if work else 0)) & (MEMO_SLOTS - 1))
        cdef tuple e = <tuple>self.recent[slot]
        if e is not None and <long>e[0] == sig_no and e[1] is ext and e[4] is work \
                and (e[2] is roles or e[2] == roles) and (e[3] is granted or e[3] == granted):
            return e
        cdef PyObject* hit = PyDict_GetItem(self.memo, (sig_no, ext, roles, granted, work))
        if hit == NULL:
            return None
        out = <object>hit
        e = (sig_no, ext, roles, granted, work, out, (out.answer, _NONE, None) if out.detail is None else None)
        self.recent[slot] = e
        return e

    cdef void forget_recent(self):
        """After the engine ran (State.outcome may have cleared the memo or switched it off)."""
        cdef Py_ssize_t i
        for i in range(MEMO_SLOTS):
            self.recent[i] = None
        self.memo_enabled = self.st.memo_enabled


cdef tuple _in_python(Context c, bytes url_tok, bytes user_tok, work):
    """``State._decide`` itself, for what the fast path declines (it may run the engine: see forget_recent)."""
    try:
        return c.st._decide(url_tok, user_tok, work)
    finally:
        c.forget_recent()


cdef tuple _decide(Context c, bytes url_tok, bytes user_tok, work):
    """``State._decide(url_tok, user_tok, work)``."""
    st = c.st
    cdef Tables t = c.t
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(url_tok)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(url_tok), i
    cdef URL u
    if n == 0 or n > MAX_LINE:
        return _in_python(c, url_tok, user_tok, work)
    for i in range(n):
        if p[i] >= 128 or p[i] == 37:  # non-ASCII or '%': decoded in Python
            return _in_python(c, url_tok, user_tok, work)
    if not _parse(p, n, &u):
        return _in_python(c, url_tok, user_tok, work)
    cdef PyObject* hit
    cdef bint own = False, bare = False
    cdef unsigned char hp[BUF]
    cdef long long sids[MAX_IDS]
    cdef Py_ssize_t hn = _host_path(p, &u, hp), k = 0, got, hlen = u.host1 - u.host0
    cdef const unsigned char* host = p + u.host0
    sig = None
    if t.has_urls:
        own = t.url_host(host, hlen)
        bare = hlen > 4 and memcmp(host, b"www.", 4) == 0 and t.url_host(host + 4, hlen - 4)
    if own or bare:  # URL entries under this host (or its www.-less name): State.signature's first part
        if hn >= 0 and own:
            got = t.url_hits(hp, hn, sids, MAX_IDS)
            k = got if got >= 0 else -1
        if hn >= 0 and bare and k >= 0:
            got = t.url_hits(hp + 4, hn - 4, sids + k, MAX_IDS - k)
            k = k + got if got >= 0 else -1
        if hn < 0 or k < 0:  # longer than the stack buffer, or a pathological number of entries
            sig = st.signature(_slice(url_tok, u.host0, u.host1), bool(u.is_ip),
                               "/" if u.path0 < 0 else _slice(url_tok, u.path0, u.path1),
                               "" if u.query0 < 0 else _slice(url_tok, u.query0, u.query1))
    if sig is None:  # the host's listed domains after the URL entries (State.signature keeps a per-host cache
        # of this; the hash table answers faster than a dict of hosts would)
        k += t.domain_hits(host, hlen, u.is_ip, sids + k, MAX_IDS - k)
        sig = _signature_of(st, t, sids, k, c.sig_cache)
    sig_no, signature = sig
    hit = PyDict_GetItem(c.users, user_tok)
    user = <object>hit if hit != NULL else st.user(user_tok)
    roles, granted = user[1], user[2]
    ext = _NONE if u.path0 < 0 else _ext_kind(t, p, u.path0, u.path1)
    out = None
    cdef tuple recent
    if c.memo_enabled:
        recent = c.memo_get(sig_no, ext, roles, granted, work)
        if recent is not None:
            if recent[6] is not None:
                return recent[6]  # an allow: the answer tuple is the same for every URL
            out = recent[5]
    if out is None:
        out = st.outcome(_parts_tuple(url_tok, &u), sig_no, signature, ext, user[0], roles, work,
                         PyUnicode_DecodeASCII(<const char*>p, n, NULL), granted)
        c.forget_recent()
    if out.detail is None:
        return (out.answer, _NONE, None)
    if hn >= 0:  # the audit subject is host/path?query
        return (out.answer, PyUnicode_DecodeASCII(<const char*>hp, hn, NULL), out)
    host_s = _slice(url_tok, u.host0, u.host1)
    path = "/" if u.path0 < 0 else _slice(url_tok, u.path0, u.path1)
    if u.query0 >= 0 and u.query1 > u.query0:
        return (out.answer, f"{host_s}{path}?{_slice(url_tok, u.query0, u.query1)}", out)
    return (out.answer, host_s + path, out)


cdef Py_ssize_t _host_path(const unsigned char* p, URL* u, unsigned char* hp) noexcept:
    """``host/path?query`` (``NormalURL.host_path``) of the parsed URL into *hp* (BUF bytes); its length,
    or -1 if it does not fit."""
    cdef Py_ssize_t hn = u.host1 - u.host0
    cdef Py_ssize_t plen = 1 if u.path0 < 0 else u.path1 - u.path0
    cdef Py_ssize_t qlen = u.query1 - u.query0 if u.query0 >= 0 else 0
    if hn + plen + 1 + qlen > BUF:
        return -1
    memcpy(hp, p + u.host0, hn)
    if u.path0 < 0:
        hp[hn] = 47
    else:
        memcpy(hp + hn, p + u.path0, plen)
    hn += plen
    if qlen > 0:
        hp[hn] = 63
        memcpy(hp + hn + 1, p + u.query0, qlen)
        hn += 1 + qlen
    return hn


cdef inline Py_ssize_t _space(const char* p, Py_ssize_t a, Py_ssize_t n) noexcept nogil:
    cdef const char* s = <const char*>memchr(p + a, 32, n - a) if a < n else NULL
    return -1 if s == NULL else s - p


def run(helper, st, list lines, block, work, put):
    """``Helper._run``'s loop over *lines* (the block's clock and window already read into *st* and *work*):
    answers go to ``block.answers``, non-allow outcomes to ``block.decided`` and the audit queue (*put*).
    Returns the number of non-empty lines."""
    cdef Context c = Context(st)
    cdef list answers = block.answers
    cdef list decided = block.decided
    cdef Py_ssize_t count = 0, n, s1, s2, s3, i, alen
    cdef Py_ssize_t cache_size = st.cache_size
    cdef const char* p
    cdef bytes line, url_tok, user_tok, answer, joined
    cdef bint ok, audited = False
    cdef PyObject* hit
    cdef tuple out
    now = st.now
    work = bool(work)
    for line in lines:
        n = PyBytes_GET_SIZE(line)
        if n == 0:
            continue
        count += 1
        p = PyBytes_AS_STRING(line)
        # channel, URL, user, "client-ip method [...]": line.split(b" ", 3), with a space in the last field
        ok = False
        s1 = _space(p, 0, n)
        if s1 > 0:
            s2 = _space(p, s1 + 1, n)
            if s2 > 0:
                s3 = _space(p, s2 + 1, n)
                if s3 > 0 and _space(p, s3 + 1, n) > 0:
                    ok = True
                    for i in range(s1):
                        if not _digit(<unsigned char>p[i]):
                            ok = False
                            break
        if not ok:
            block.odd += 1
            helper._odd_line(line, block, work, st)
            c.fresh, c.stale = st.fresh, st.stale  # it may have turned the cache's generations
            c.forget_recent()  # and run the engine
            if block.abandoned:
                break
            continue
        url_tok = PyBytes_FromStringAndSize(p + s1 + 1, s2 - s1 - 1)
        user_tok = PyBytes_FromStringAndSize(p + s2 + 1, s3 - s2 - 1)
        key = (url_tok, user_tok, work)
        hit = PyDict_GetItem(c.fresh, key)
        if hit != NULL:
            out = <object>hit
        else:
            try:
                hit = PyDict_GetItem(c.stale, key)
                if hit != NULL:
                    out = <object>hit
                else:
                    out = _decide(c, url_tok, user_tok, work)
                PyDict_SetItem(c.fresh, key, out)
                if len(c.fresh) * 2 >= cache_size:
                    st.stale = c.stale = c.fresh
                    st.fresh = c.fresh = {}
            except Exception as exc:  # never leave Squid without an answer
                out = helper._failed(exc, url_tok, st)
            if block.abandoned:  # the watchdog can only have run while Python code did (a miss, an audit put)
                break
        if audited and block.abandoned:
            break
        answer = out[0]
        alen = PyBytes_GET_SIZE(answer)
        joined = PyBytes_FromStringAndSize(NULL, s1 + alen)
        memcpy(PyBytes_AS_STRING(joined), p, s1)
        memcpy(PyBytes_AS_STRING(joined) + s1, PyBytes_AS_STRING(answer), alen)
        PyList_Append(answers, joined)
        outcome = out[2]
        audited = False
        if outcome is not None:
            PyList_Append(decided, outcome)
            if put is not None:
                put((now, user_tok, PyBytes_FromStringAndSize(p + s3 + 1, n - s3 - 1), out[1], outcome))
                audited = True
    return count
