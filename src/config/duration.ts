// Durations as people write them: `90s`, `15m`, `2h`, `1h30m`, `1d`, or ISO 8601 `PT2H`, `PT1H30M`.

const UNIT_SECONDS = { d: 86_400, h: 3_600, m: 60, s: 1 } as const;
const SIMPLE = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/;
const ISO = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

/** Seconds in `text`, or undefined when it is not a duration. Zero is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 32) return undefined;
  const m = SIMPLE.exec(text) ?? ISO.exec(text);
  if (!m || m.slice(1).every((g) => g === undefined)) return undefined;
  const [d, h, min, s] = m.slice(1).map((g) => (g === undefined ? 0 : Number(g)));
  const total = d! * UNIT_SECONDS.d + h! * UNIT_SECONDS.h + min! * UNIT_SECONDS.m + s!;
  return total > 0 && Number.isSafeInteger(total) ? total : undefined;
}

/** The shortest text that parseDuration reads back as `seconds`. */
export function formatDuration(seconds: number): string {
  let rest = Math.floor(seconds);
  let out = '';
  for (const [unit, size] of Object.entries(UNIT_SECONDS)) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`;
      rest %= size;
    }
  }
  return out || '0s';
}
