// Minimal XML writing for EC2 responses: escaped text, elements, and EC2's `<item>` lists.
export type XmlValue = string | number | boolean | undefined | null | Xml;

/** Already-serialized markup; plain strings are always escaped. */
export class Xml {
  constructor(readonly markup: string) {}
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** `<name>value</name>`; undefined and null leave the element out, as EC2 does for absent members. */
export function el(name: string, value: XmlValue | XmlValue[]): Xml {
  if (value === undefined || value === null) return new Xml('');
  const body = (Array.isArray(value) ? value : [value]).map(text).join('');
  return new Xml(`<${name}>${body}</${name}>`);
}

/** An EC2 list: `<nameSet><item>…</item>…</nameSet>`. */
export function items(name: string, list: Xml[][]): Xml {
  return new Xml(`<${name}>${list.map((members) => `<item>${members.map((m) => m.markup).join('')}</item>`).join('')}</${name}>`);
}

function text(v: XmlValue): string {
  if (v === undefined || v === null) return '';
  if (v instanceof Xml) return v.markup;
  return escapeXml(String(v));
}
