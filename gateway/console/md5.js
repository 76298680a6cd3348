// Incremental MD5 (RFC 1321) for the console: the upload's md5 is computed chunk by chunk
// as the bytes are sent, so a large file is never held in memory at once.
// Usage: const h = new MD5(); h.update(uint8array); ...; h.hex()  (hex() ends the hash).
"use strict";

const MD5 = (() => {
  const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
  const K = new Int32Array(64);
  for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;

  class MD5 {
    constructor() {
      this.state = new Int32Array([0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476]);
      this.buffer = new Uint8Array(64);
      this.buffered = 0;
      this.length = 0;
      this.words = new Int32Array(16);
    }

    update(bytes) {
      let i = 0;
      this.length += bytes.length;
      if (this.buffered) {
        const take = Math.min(64 - this.buffered, bytes.length);
        this.buffer.set(bytes.subarray(0, take), this.buffered);
        this.buffered += take;
        i = take;
        if (this.buffered < 64) return this;
        this.block(this.buffer, 0);
        this.buffered = 0;
      }
      for (; i + 64 <= bytes.length; i += 64) this.block(bytes, i);
      if (i < bytes.length) {
        this.buffer.set(bytes.subarray(i), 0);
        this.buffered = bytes.length - i;
      }
      return this;
    }

    block(b, o) {
      const x = this.words;
      for (let j = 0; j < 16; j++, o += 4) x[j] = b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
      let [a, bb, c, d] = this.state;
      for (let j = 0; j < 64; j++) {
        let f, g;
        if (j < 16) { f = (bb & c) | (~bb & d); g = j; }
        else if (j < 32) { f = (d & bb) | (~d & c); g = (5 * j + 1) & 15; }
        else if (j < 48) { f = bb ^ c ^ d; g = (3 * j + 5) & 15; }
        else { f = c ^ (bb | ~d); g = (7 * j) & 15; }
        const s = SHIFTS[(j >> 4) * 4 + (j & 3)];
        const sum = (a + f + K[j] + x[g]) | 0;
        a = d; d = c; c = bb;
        bb = (bb + ((sum << s) | (sum >>> (32 - s)))) | 0;
      }
      const st = this.state;
      st[0] += a; st[1] += bb; st[2] += c; st[3] += d;  // Int32Array wraps like the spec's mod 2^32
    }

    hex() {
      const bits = this.length * 8;
      const pad = new Uint8Array((this.buffered < 56 ? 64 : 128) - this.buffered);
      pad[0] = 0x80;
      for (let i = 0, n = pad.length; i < 8; i++) pad[n - 8 + i] = Math.floor(bits / 2 ** (8 * i)) & 0xff;
      this.update(pad);
      const out = new Uint8Array(this.state.buffer);  // little-endian words, as MD5 wants
      return Array.from(out, (byte) => byte.toString(16).padStart(2, "0")).join("");
    }
  }
  return MD5;
})();
