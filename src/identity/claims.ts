// Reads profile facts out of verified ID token claims: groups from a configurable (possibly nested) claim.

/**
 * Groups at `path` in `claims`. A dotted path walks nested objects (`realm_access.roles`); a claim
 * whose literal name contains dots (some IdPs use URLs as claim names) wins over walking.
 */
export function groupsAt(claims: Record<string, unknown>, path: string): string[] {
  const value = path in claims ? claims[path] : walk(claims, path.split('.'));
  if (typeof value === 'string') return value.length > 0 ? [value] : [];
  if (!Array.isArray(value)) return [];
  return [...new Set(value.filter((v): v is string => typeof v === 'string' && v.length > 0))];
}

function walk(obj: unknown, parts: string[]): unknown {
  let cur: unknown = obj;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, p)) return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

export function optionalString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}
