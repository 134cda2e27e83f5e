/**
 * 16-bit float decoding for checkpoint readers: float16 and bfloat16 bit patterns to the float32 bit pattern
 * that holds the same value exactly.
 */

/**
 * IEEE binary16 bits → binary32 bits, exactly. Sign s, exponent e (5 bits, bias 15), mantissa m (10 bits):
 *   e = 0:  ±m·2^-24 (zero or subnormal; renormalised, since every such value is a float32 normal or zero)
 *   e = 31: ±inf (m = 0) or NaN, payload kept in the top mantissa bits
 *   else:   ±(1 + m/1024)·2^(e-15), i.e. exponent rebiased by 127 − 15 = 112 and mantissa shifted by 13.
 */
export function halfToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  let exp = (h >> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp === 0) {
    if (mant === 0) return sign >>> 0;
    // Shift the leading 1 up to bit 10; each shift lowers the exponent by one.
    exp = 1;
    while ((mant & 0x400) === 0) { mant <<= 1; exp--; }
    mant &= 0x3ff;
  }
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

/** bfloat16 is the top half of a float32: shift it back into place. */
export function bfloat16ToFloatBits(h: number): number {
  return (h << 16) >>> 0;
}
