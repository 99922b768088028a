// Leakwatch lw1 fingerprints, computed in the browser so a secret never
// leaves it. This is the same computation as matcher.Compute (see
// matcher/doc.go): WebCrypto SHA-256 for the hash, BigInt for the 64-bit
// window hash. web/fingerprint_browser_test.go proves both agree.
"use strict";

(function (global) {
  const VERSION = "lw1";
  const MIN_SECRET_LEN = 8;
  const LONG_WINDOW = 16;
  const MAX_SECRET_LEN = 16 << 10;
  const MIN_PEM_BODY = 64;
  const WEAK_BITS = 64;
  const K = 0x9E3779B97F4A7C15n;
  const MASK = (1n << 64n) - 1n;
  // Keep in step with matcher/fingerprint.go providers (longest first).
  const PREFIXES = [
    "github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
    "xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xoxe-", "xapp-",
    "sk_live_", "rk_live_", "sk_test_", "rk_test_", "whsec_",
    "glpat-", "gldt-", "glrt-", "glptt-",
    "AKIA", "ASIA", "AIza", "GOCSPX-", "npm_", "SG.", "sk-proj-", "sk-ant-",
  ];
  const WEAK_WORDS = ["password", "passwd", "secret", "admin", "changeme", "qwerty", "letmein", "welcome",
    "example", "default", "login", "token", "dragon", "master", "monkey", "iloveyou",
    "sunshine", "princess", "football", "baseball", "hello", "summer", "winter", "test",
    "123456", "abc123", "asdf", "root", "user", "pass", "1234", "abcd", "xxxx", "dummy", "sample"];

  const enc = new TextEncoder();

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function le64(b, off) {
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(b[off + i]);
    return v;
  }

  function windowLong(w) {
    const lo = (le64(w, 0) * K) & MASK;
    const hi = (le64(w, 8) * K) & MASK;
    return ((lo ^ (hi >> 1n)) >> 24n).toString(16).padStart(10, "0");
  }

  // windowWord is matcher.windowWord: the top 40 (long) or 32 bits of the
  // product of the first 8 bytes.
  function windowWord(w, long) {
    const c = (le64(w, 0) * K) & MASK;
    return long ? (c >> 24n).toString(16).padStart(10, "0") : (c >> 32n).toString(16).padStart(8, "0");
  }

  async function hash128(domain, body) {
    const d = enc.encode(domain);
    const buf = new Uint8Array(d.length + body.length);
    buf.set(d, 0);
    buf.set(body, d.length);
    const sum = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
    return hex(sum.subarray(0, 16));
  }

  function startsWith(b, s) {
    if (b.length < s.length) return false;
    for (let i = 0; i < s.length; i++) if (b[i] !== s.charCodeAt(i)) return false;
    return true;
  }

  function indexOf(b, s, from) {
    outer: for (let i = from || 0; i + s.length <= b.length; i++) {
      for (let j = 0; j < s.length; j++) if (b[i + j] !== s.charCodeAt(j)) continue outer;
      return i;
    }
    return -1;
  }

  // Token characters: letters, digits and "+-./=_~" (matcher.tokenByte).
  function isTokenRun(b) {
    for (const c of b) {
      const ok = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || "+-./=_~".indexOf(String.fromCharCode(c)) >= 0;
      if (!ok) return false;
    }
    return true;
  }

  function isSpace(c) { return c === 32 || c === 9 || c === 10 || c === 13 || c === 11 || c === 12; }
  function isB64(c) {
    return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
  }

  // isPEMKey mirrors matcher.isPEMKey.
  function isPEMKey(b) {
    const i = indexOf(b, "-----BEGIN", 0);
    if (i < 0) return false;
    let end = b.indexOf(10, i);
    if (end < 0) end = b.length;
    let line = b.subarray(i, end);
    const k = indexOf(line, "\\n", 0);
    if (k >= 0) line = line.subarray(0, k);
    return indexOf(line, "PRIVATE KEY-----", 0) >= 0;
  }

  function isDiffPlus(l) {
    let n = 0;
    for (const c of l) {
      if (c === 10 || c === 13 || c === 92) break;
      if (isB64(c) || c === 61) n++;
    }
    return n % 4 === 1;
  }

  // cleanPEMBody mirrors matcher.cleanPEMBody.
  function cleanPEMBody(raw) {
    const out = [];
    let lineStart = true;
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i];
      if (c === 92 && i + 1 < raw.length && (raw[i + 1] === 110 || raw[i + 1] === 114 || raw[i + 1] === 116)) {
        i++;
        lineStart = raw[i] !== 116;
        continue;
      }
      if (c === 10 || c === 13) { lineStart = true; continue; }
      if (lineStart) {
        let j = i;
        while (j < raw.length && raw[j] !== 10 && raw[j] !== 92) j++;
        if (raw.subarray(i, j).indexOf(58) >= 0) { i = j - 1; continue; }
        lineStart = false;
        if (c === 62 || c === 35) continue;
        if (c === 43 && isDiffPlus(raw.subarray(i))) continue;
      }
      if (isB64(c) || c === 61) out.push(c);
    }
    return new Uint8Array(out);
  }

  // normalisePEM mirrors matcher.pemBlock for the first private-key block.
  function normalisePEM(b) {
    let from = 0;
    while (from < b.length) {
      const i = indexOf(b, "-----BEGIN", from);
      if (i < 0) return null;
      const start = i;
      const k = indexOf(b.subarray(start + 10), "-----", 0);
      if (k < 0 || k > 64) { from = start + 10; continue; }
      const hdrStop = start + 10 + k + 5;
      const hdr = b.subarray(start, hdrStop);
      const tail = "PRIVATE KEY-----";
      if (hdr.length < tail.length || indexOf(hdr, tail, hdr.length - tail.length) < 0) { from = start + 10; continue; }
      const e = indexOf(b.subarray(hdrStop), "-----END", 0);
      if (e < 0 || e > MAX_SECRET_LEN * 2) return null;
      return cleanPEMBody(b.subarray(hdrStop, hdrStop + e));
    }
    return null;
  }

  // The QWERTY rows, each half a key right of the one above
  // (matcher.keyboardRows).
  const KEYBOARD_ROWS = ["1234567890-=", "qwertyuiop[]", "asdfghjkl;'", "zxcvbnm,./"];
  const KEYBOARD_AT = new Map();
  KEYBOARD_ROWS.forEach((row, r) => { for (let c = 0; c < row.length; c++) KEYBOARD_AT.set(row.charCodeAt(c), [r + 1, c]); });

  function keyboardNeighbours(a, b) {
    const pa = KEYBOARD_AT.get(a), pb = KEYBOARD_AT.get(b);
    if (!pa || !pb || a === b) return false;
    const dr = pb[0] - pa[0], dc = pb[1] - pa[1];
    if (dr === 0) return dc === 1 || dc === -1;
    if (dr === 1) return dc === 0 || dc === -1;
    if (dr === -1) return dc === 0 || dc === 1;
    return false;
  }

  // keyboardWalks mirrors matcher.keyboardWalks.
  function keyboardWalks(lowered) {
    const marked = new Array(lowered.length).fill(false);
    for (let start = 0; start < lowered.length;) {
      let end = start + 1;
      while (end < lowered.length && keyboardNeighbours(lowered[end - 1], lowered[end])) end++;
      if (end - start >= 4) for (let j = start + 2; j < end; j++) marked[j] = true;
      start = end;
    }
    return marked;
  }

  const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

  // strengthOf mirrors matcher.strengthOf: [bits, bar].
  function strengthOf(prefix, rest) {
    if ((prefix === "AKIA" || prefix === "ASIA") && rest.length === 16 && Array.from(rest).every((c) => BASE32.indexOf(String.fromCharCode(c)) >= 0)) {
      return [estimateBits(rest, 32), WEAK_BITS - 12];
    }
    return [estimateBits(rest), WEAK_BITS];
  }

  // estimateBits mirrors matcher.estimateBits (alphabet 0 or absent: guessed
  // from the character classes).
  function estimateBits(s, alphabet) {
    if (s.length === 0) return 0;
    let lower = false, upper = false, digit = false, other = false, high = false, hexOnly = true;
    for (const c of s) {
      if (c >= 97 && c <= 122) { lower = true; if (c > 102) hexOnly = false; }
      else if (c >= 65 && c <= 90) { upper = true; if (c > 70) hexOnly = false; }
      else if (c >= 48 && c <= 57) digit = true;
      else if (c >= 0x80) { high = true; hexOnly = false; }
      else { other = true; hexOnly = false; }
    }
    let alpha = alphabet || 0;
    if (alpha > 0) {
      // known
    } else if (hexOnly && !(lower && upper)) {
      alpha = (!lower && !upper) ? 10 : 16;
    } else {
      if (lower) alpha += 26;
      if (upper) alpha += 26;
      if (digit) alpha += 10;
      if (other) alpha += 33;
      if (high) alpha += 64;
    }
    const perChar = Math.log2(alpha);
    const covered = new Array(s.length).fill(false);
    // Go lower-cases ASCII only for these ASCII words; bytes >= 0x80 never match.
    const lowered = Array.from(s, (c) => (c >= 65 && c <= 90 ? c + 32 : c));
    let bits = 0;
    for (const w of WEAK_WORDS) {
      for (let from = 0; ;) {
        let i = -1;
        outer: for (let p = from; p + w.length <= lowered.length; p++) {
          for (let q = 0; q < w.length; q++) if (lowered[p + q] !== w.charCodeAt(q)) continue outer;
          i = p;
          break;
        }
        if (i < 0) break;
        let fresh = false;
        for (let j = i; j < i + w.length; j++) { if (!covered[j]) fresh = true; covered[j] = true; }
        if (fresh) bits += 6;
        from = i + 1;
      }
    }
    // Repeated 5-grams (matcher.estimateBits).
    const gram = (i) => lowered.slice(i, i + 5).join(",");
    for (let i = 5; i + 5 <= lowered.length; i++) {
      if (covered[i]) continue;
      const g = gram(i);
      let seen = false;
      // Go: strings.Contains(lowered[:i], gram): wholly before i.
      for (let j = 0; j + 5 <= i && !seen; j++) seen = gram(j) === g;
      if (!seen) continue;
      for (let j = i; j < i + 5; j++) covered[j] = true;
      bits += 2;
    }
    const walk = keyboardWalks(lowered);
    for (let i = 0; i < s.length; i++) {
      if (covered[i]) continue;
      if (i >= 2) {
        const d = s[i] - s[i - 1];
        if ((d === 0 || d === 1 || d === -1) && s[i - 1] - s[i - 2] === d) { bits++; continue; }
      }
      if (walk[i]) { bits += Math.log2(6); continue; }
      bits += perChar;
    }
    const counts = new Map();
    for (const c of s) counts.set(c, (counts.get(c) || 0) + 1);
    let h = 0;
    for (const k of counts.values()) { const p = k / s.length; h -= p * Math.log2(p); }
    const cap = 1.6 * h * s.length;
    return cap < bits ? cap : bits;
  }

  // compute returns the lw1 fingerprint of a secret (a string or bytes). It
  // throws an Error (never holding the secret) for a secret Compute refuses.
  async function compute(secret, opts) {
    const allowWeak = !!(opts && opts.allowWeak);
    const b = typeof secret === "string" ? enc.encode(secret) : new Uint8Array(secret);
    if (isPEMKey(b)) {
      const body = normalisePEM(b);
      if (!body) throw new Error("PEM private key has no END line or no base64 body");
      if (body.length < MIN_PEM_BODY || body.length > MAX_SECRET_LEN) {
        throw new Error("PEM body of " + body.length + " bytes is outside " + MIN_PEM_BODY + ".." + MAX_SECRET_LEN);
      }
      return VERSION + ":pem::" + body.length + "::" + (await hash128("leakwatch:lw1:pem\u0000", body));
    }
    if (b.length === 0) throw new Error("empty secret");
    if (b.length > MAX_SECRET_LEN) throw new Error("secret exceeds " + MAX_SECRET_LEN + " bytes");
    if (b.indexOf(10) >= 0 || b.indexOf(13) >= 0) throw new Error("secret spans several lines (only PEM private keys may)");
    if (isSpace(b[0]) || isSpace(b[b.length - 1])) throw new Error("secret has leading or trailing whitespace; trim it");
    const prefix = PREFIXES.find((p) => startsWith(b, p)) || "";
    const rest = b.subarray(prefix.length);
    if (rest.length < MIN_SECRET_LEN) throw new Error("weak secret: fewer than " + MIN_SECRET_LEN + " bytes after the provider prefix");
    if (!allowWeak) {
      if (rest.length < LONG_WINDOW) throw new Error("weak secret: fewer than " + LONG_WINDOW + " bytes after the provider prefix");
      const [bits, bar] = strengthOf(prefix, rest);
      if (bits < bar) throw new Error("weak secret: about " + Math.round(bits) + " bits of entropy, need " + bar);
    }
    // As matcher.Compute: kind "t" (16-byte window) when the whole secret
    // is token characters; else "w" (ASCII) or "u", window its first 8
    // bytes.
    const long = rest.length >= LONG_WINDOW;
    let kind = b.every((c) => c < 0x80) ? "w" : "u";
    let win = windowWord(rest, long);
    if (long && isTokenRun(b)) {
      kind = "t";
      win = windowLong(rest);
    }
    return VERSION + ":" + kind + ":" + prefix + ":" + b.length + ":" + win + ":" + (await hash128("leakwatch:lw1:s\u0000", b));
  }

  global.LeakwatchFingerprint = { compute: compute, estimateBits: estimateBits };
})(typeof window !== "undefined" ? window : globalThis);
