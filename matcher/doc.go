// Package matcher decides which registered secrets occur in a text.
//
// Customers never hand Leakwatch a secret. They register a fingerprint,
// computed locally (leakwatch fingerprint, or the same computation in a
// browser with WebCrypto SHA-256 and BigInt), and the matcher reports every
// place where the exact bytes of a registered secret occur in public text,
// plainly or inside an encoding. Because it matches exact registered
// secrets rather than patterns, every finding is a true positive by
// construction. The package is pure Go, standard library only, with no
// database and no system calls: reading file trees for `leakwatch scan` is
// matcher/files.
//
// # Fingerprint format (lw1)
//
// A fingerprint is one line of six colon-separated fields:
//
//	lw1:t:<prefix>:<length>:<window>:<hash>     a token
//	lw1:w:<prefix>:<length>:<window>:<hash>     any other single-line secret
//	lw1:u:<prefix>:<length>:<window>:<hash>     the same, not all ASCII
//	lw1:s:<prefix>:<length>:<window>:<hash>     the same, as made before "w"
//	lw1:pem::<length>::<hash>                   a PEM private key
//
//	lw1:t:ghp_:40:85fcc17517:c72c11aca89295e0dc3c82f84cb84667
//
// The fields:
//
//   - The kind is "t" when the whole secret consists of token characters
//     (letters, digits and "+-./=_~") and has at least 16 bytes after the
//     prefix, as nearly every API key does. It lets the scanner look for
//     tokens only inside runs of token characters. Any other secret
//     (passwords with other symbols, short weak secrets) is of kind "w",
//     or "u" when it holds bytes outside ASCII, which tells the scanner
//     whether decoded text must be ASCII to hold a registered secret. Kind
//     "s" is what Compute gave such secrets before kind "w" existed; it is
//     still accepted, and scanned for at a higher cost (below). The kind
//     costs at most two bits.
//   - prefix is the secret's public provider prefix (AKIA, ghp_,
//     github_pat_, xoxb-, sk_live_, glpat-, AIza, npm_, SG., ...) or empty.
//     It is the only plaintext in a fingerprint and names the provider.
//   - length is the secret's length in bytes (for PEM: of the normalised
//     body).
//   - window is the prefilter hash of the window. With lo the little-endian
//     uint64 of the first 8 bytes after the prefix, K = 0x9E3779B97F4A7C15
//     and arithmetic mod 2^64, for kinds "w" and "u" it is (lo*K) >> 24: 40
//     bits, 10 hex digits; for a secret with fewer than 16 bytes after its
//     prefix (always weak) (lo*K) >> 32: 32 bits, 8 hex digits, whatever its
//     kind. For kind "t" and a longer kind "s" the window is the first 16
//     bytes: with hi the uint64 of the second 8, it is
//     ((lo*K) xor ((hi*K) >> 1)) >> 24, 40 bits.
//   - hash is the first 128 bits of SHA-256("leakwatch:lw1:s\x00" || secret)
//     (for PEM, SHA-256("leakwatch:lw1:pem\x00" || body)), 32 hex digits.
//
// Why this shape. The scanner must test every place in every text against
// every registered secret, so it needs something it can compute at each
// offset in a few cycles: the window hash, one multiplication per byte. A
// 40-bit window hash makes a random offset match one of a million
// fingerprints with probability about 2^-20, so the full hash (SHA-256 of the
// candidate) is computed essentially only for real occurrences. The window
// sits after the public prefix, so it covers secret bytes rather than the
// bytes shared by every token of a provider. The length tells the verifier
// where the candidate ends, the prefix where it starts.
//
// What a fingerprint reveals. The prefix is public by definition, the kind
// at most two bits. The window hash carries at most 40 bits of information,
// all about the first 16 secret bytes (for kinds "w" and "u", the first 8);
// the hash is a domain-separated SHA-256, so generic tables of hashed
// passwords do not apply, and checking a guess costs a SHA-256. An attacker holding the fingerprint of a secret with E bits of
// entropy still faces at least E-40 bits: for provider tokens (well over 128
// bits) that leaves nothing useful. Low-entropy secrets cannot be protected
// by any hash and would also match by accident, so Compute refuses them with
// ErrWeakSecret: fewer than 16 bytes after the prefix, or an EstimateBits
// below WeakBits (64); an AWS key ID, whose 80 bits come from its generator,
// is measured over base32 and held to 52, which refuses placeholders and no
// random key. ComputeOpts.AllowWeak overrides; treat the fingerprint
// of a weak secret as sensitive. Everything is computable with SHA-256 and
// 64-bit integer arithmetic, so a browser computes identical fingerprints.
//
// PEM private keys are normalised before hashing: the base64 body between the
// BEGIN and END lines with every line break (LF, CRLF, literal \n escapes),
// indentation, RFC 1421 header line and diff "+" marker removed. The scanner
// finds "-----BEGIN ... PRIVATE KEY-----" blocks with a substring search and
// normalises them the same way, so a key matches whatever its wrapping or
// line endings, also inside JSON strings.
//
// # Scanning
//
// A Set is immutable and safe for concurrent use; build a new one when the
// registry changes and swap it atomically. Its core is a blocked Bloom
// filter over the 40-bit window hashes (32 bits per fingerprint, three probes
// in one 64-bit word: 512 KiB for 100,000 fingerprints, 4 MiB for a million),
// an open-addressing table from window hash to the entries sorted by it, and
// 32 bytes per fingerprint: about 45 bytes of heap per fingerprint in all.
//
// Scanning a document makes one pass over it to find the runs of token
// characters long enough to matter: it tests one 8-byte word every 8 to 16
// bytes (the shortest run of interest sets the stride) with a branch-free
// class test, and measures only the runs those words fall in. Inside runs
// long enough to hold a token secret it hashes the window at every offset
// where one can start (up to the shortest registered body from the end;
// each word's product serves two windows), probes the filter, and on the
// rare pass looks the hash up and confirms each candidate with SHA-256.
// Tokens with a provider prefix have a filter of their own, probed only
// where the two bytes before the offset end a registered prefix (an 8 KiB
// bitmap that stays in L1), so a large registry of mostly prefixed tokens
// does not cost a cache miss at every offset. The
// same pass hands base64 stretches to the decoder. Passwords (kinds "w",
// "u" and "s") can start anywhere, so while any are registered the window
// is also hashed at every offset of the document. A kind "w" or "u"
// window hash is the top of the product of the offset's own 8 bytes, so an
// offset costs one multiplication and the test of a first stage: a fixed
// 128 KiB Bloom filter (two bits per fingerprint in one word, from the top
// 26 bits of the product) that stays in L2 and needs no bounds checks.
// Eight offsets are tested with one branch (on one bit each while the
// filter is sparse, up to 16,384 fingerprints); about one offset in a
// thousand passes both bits, then the exact filter (a bitset of the top 32
// bits) and the lookup.
// A long kind "s" fingerprint (made before kind "w") hashes 16 bytes: while
// any is registered, each offset also combines the next word's product and
// tests a second first stage, which costs about half as much again.
//
// An earlier design took a password's window at its first digit, capital
// or punctuation mark and probed only such offsets, about a third of a
// source file's. Finding and packing them cost as much as the probes
// saved: on the realistic benchmark that pass ran at 800 MB/s (x86-64-v1)
// and 880 (v3) where the every-offset loop above runs at 1,000 and 1,200,
// and secrets with no such byte early on still needed the every-offset
// loop.
//
// The first stages are computed from the fingerprints' window hashes and
// hold a subset of their bits, so they reveal nothing about a secret that
// its fingerprint does not; they are built in memory and never stored.
//
// Encodings are handled by finding candidate runs cheaply and decoding only
// those, recursively (up to three levels, so base64 of UTF-16 is found):
//
//   - base64 (standard or URL alphabet, line-wrapped at any width of 23 or
//     more with LF, CRLF or literal \n, padded or not): runs long enough to
//     hold the shortest registered secret whose characters alone show they
//     can decode to that many ASCII bytes (while secrets of kind "s", which
//     may hold UTF-8, are registered: runs with mixed case or digits),
//     decoded at their natural alignment (and after a backslash escape or '-'/'_' glue
//     at their start), so whole base64-encoded files and Kubernetes Secret
//     values are searched; decoded bytes are scanned only when they hold a
//     stretch of text (or UTF-16) as long as that secret;
//   - URL percent-encoding ("url"): tokens holding %XX;
//   - JSON and JavaScript string escapes ("json-escape"): tokens holding
//     \uXXXX, \xHH or \/;
//   - UTF-16 ("utf16le", "utf16be"): stretches where every other byte is NUL.
//
// A finding inside an encoding reports the encoding chain (outermost first)
// and the span of the encoded run in the original document: for base64 the
// whole run, for the others the exact encoded bytes of the secret.
//
// Positions (line and column) and previews are computed only for findings.
// A preview is the finding's line cut to at most 200 bytes around it, with
// every finding on it replaced by its public prefix and asterisks, so it
// never holds a registered secret.
//
// ScanReader streams: it scans overlapping chunks and reports each finding
// once, from the chunk where the secret, encoded run or PEM block holding it
// lies whole, so its findings equal Scan's on the whole stream.
package matcher
