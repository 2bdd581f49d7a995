// Numbers written as Intl.NumberFormat writes them for vi-VN and en-US, for the shapes the
// pages use (fixed decimals, percent, significant digits, compact units), without building a
// formatter: a page's first Intl formatter loads the locale data, about 100 ms on a phone.
//
// Rounding is Intl's: the shortest decimal form of the number, half away from zero (1.005 ->
// "1.01", where toFixed says "1.00"). Loaded by the site's pages and by the report frame.
(function () {
  'use strict';

  // [group separator, decimal point]
  const MARKS = { vi: ['.', ','], en: [',', '.'] };

  const COMPACT = {
    vi: [[12, '\u00a0NT'], [9, '\u00a0T'], [6, '\u00a0Tr'], [3, '\u00a0N']],
    en: [[12, 'T'], [9, 'B'], [6, 'M'], [3, 'K']],
  };

  // |value| as its shortest decimal digits and the power of ten of the first one:
  // 1.005 -> { digits: '1005', exp: 0 }, 0.0285 -> { digits: '285', exp: -2 }.
  function decimal(value) {
    const [mantissa, exp] = Math.abs(value).toExponential().split('e');
    return { digits: mantissa.replace('.', ''), exp: Number(exp) };
  }

  // The first `keep` digits as a whole number, rounded half away from zero on the next digit.
  function roundTo(digits, keep) {
    if (keep < 0) return 0n;
    const kept = BigInt(digits.slice(0, keep).padEnd(keep, '0') || '0');
    return keep < digits.length && digits[keep] >= '5' ? kept + 1n : kept;
  }

  // `units` scaled by 10^-fraction, as [whole, fraction] strings.
  function place(units, fraction) {
    const text = units.toString().padStart(fraction + 1, '0');
    return fraction > 0 ? [text.slice(0, -fraction), text.slice(-fraction)] : [text, ''];
  }

  // Separators, the fraction cut back to `min` digits where it ends in zeros, and the sign
  // (never on a value that rounds to zero). minGrouping 2: "1000" but "12,345" (compact units).
  function write(negative, whole, fraction, min, lang, minGrouping) {
    const [group, point] = MARKS[lang === 'en' ? 'en' : 'vi'];
    let end = fraction.length;
    while (end > min && fraction[end - 1] === '0') end -= 1;
    const frac = fraction.slice(0, end);
    const grouped = whole.length >= 4 + (minGrouping - 1)
      ? whole.replace(/\B(?=(\d{3})+(?!\d))/g, group)
      : whole;
    const zero = !/[1-9]/.test(whole + frac);
    return `${negative && !zero ? '-' : ''}${grouped}${frac ? point + frac : ''}`;
  }

  // `shift` moves the decimal point (2 for percent, -6 for millions) before rounding.
  function fixedShifted(value, min, max, lang, shift, minGrouping) {
    const { digits, exp } = decimal(value);
    const units = roundTo(digits, exp + shift + 1 + max);
    const [whole, fraction] = place(units, max);
    return write(value < 0, whole, fraction, min, lang, minGrouping);
  }

  // 1234.5 -> "1.234,5" / "1,234.5"
  function fixed(value, min, max, lang) {
    return fixedShifted(value, min, max, lang, 0, 1);
  }

  // 0.125 -> "12,5%" / "12.5%"
  function percent(ratio, max, lang) {
    return `${fixedShifted(ratio, 0, max, lang, 2, 1)}%`;
  }

  // At most `count` significant digits, trailing zeros dropped: 0.000123456 -> "0,000123".
  function significant(value, count, lang) {
    let { digits, exp } = decimal(value);
    let units = roundTo(digits, count);
    if (units.toString().length > count) {
      // 0.9996 -> 1.00: one more digit before the point.
      units /= 10n;
      exp += 1;
    }
    const fraction = Math.max(0, count - 1 - exp);
    const scaled = fraction > 0 ? units : units * 10n ** BigInt(exp - count + 1);
    const [whole, frac] = place(scaled, fraction);
    return write(value < 0, whole, frac, 0, lang, 1);
  }

  // 2.89e12 -> "2,89 NT" / "2.89T"; below a thousand, plain.
  function compact(value, max, lang) {
    const units = COMPACT[lang === 'en' ? 'en' : 'vi'];
    const { digits, exp } = decimal(value);
    let i = units.findIndex(([power]) => exp >= power);
    // 999.996 thousand rounds to 1000: it is written as a million (and 999.999 as 1K).
    const power = i < 0 ? 0 : units[i][0];
    if (i !== 0 && roundTo(digits, exp - power + 1 + max) >= 1000n * 10n ** BigInt(max)) {
      i = i < 0 ? units.length - 1 : i - 1;
    }
    if (i < 0) return fixedShifted(value, 0, max, lang, 0, 1);
    return `${fixedShifted(value, 0, max, lang, -units[i][0], 2)}${units[i][1]}`;
  }

  window.crNumbers = { fixed, percent, significant, compact };
})();
