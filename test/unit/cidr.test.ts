// Addresses and CIDRs as integers (src/net/cidr.ts): what is accepted, its canonical text, host bits and ranges.
import assert from 'node:assert/strict';
import { BlockList } from 'node:net';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  addressText,
  cidrContains,
  cidrRange,
  cidrText,
  hostMask,
  parseAddress,
  parseCidr,
  rangeToPrefix,
  readCidr,
  type Family,
} from '../../src/net/cidr.ts';

const text = (s: string) => parseAddress(s)?.text;
const value = (s: string) => parseAddress(s)?.value;

test('IPv6 special forms: the unspecified and loopback addresses, IPv4-mapped', () => {
  assert.deepEqual(parseAddress('::'), { family: 6, value: 0n, text: '::' });
  assert.deepEqual(parseAddress('::1'), { family: 6, value: 1n, text: '::1' });
  // A dotted tail is read, but the address stays IPv6 and its canonical text is hex, as the URL serializer writes it.
  assert.deepEqual(parseAddress('::ffff:1.2.3.4'), { family: 6, value: 0xffff_0102_0304n, text: '::ffff:102:304' });
  assert.equal(value('::FFFF:1.2.3.4'), 0xffff_0102_0304n);
  assert.equal(value('0:0:0:0:0:ffff:1.2.3.4'), 0xffff_0102_0304n);
  assert.equal(text('::1.2.3.4'), '::102:304');
  assert.equal(text('1:2:3:4:5:6:1.2.3.4'), '1:2:3:4:5:6:102:304');
});

test('IPv6 canonical text: lowercase, no leading zeros, the longest (then first) zero run compressed, a lone zero kept', () => {
  assert.equal(text('2001:DB8:0:0::1'), '2001:db8::1');
  assert.equal(text('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  assert.equal(text('2001:db8::8:800:200C:417A'), '2001:db8::8:800:200c:417a');
  assert.equal(text('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
  assert.equal(text('1:0:0:2:0:0:3:4'), '1::2:0:0:3:4');
  assert.equal(text('1:0:2:3:4:5:6:7'), '1:0:2:3:4:5:6:7');
  assert.equal(text('1:2:3:4:5:6:7::'), '1:2:3:4:5:6:7:0');
  assert.equal(text('::2:3:4:5:6:7:8'), '0:2:3:4:5:6:7:8');
  assert.equal(text('ABCD::'), 'abcd::');
  assert.equal(value('ABCD::'), 0xabcdn << 112n);
});

test('IPv4: dotted decimal only; octets with leading zeros are refused (octal to inet_aton, decimal to others)', () => {
  assert.deepEqual(parseAddress('198.51.100.7'), { family: 4, value: 0xc633_6407n, text: '198.51.100.7' });
  assert.equal(text('0.0.0.0'), '0.0.0.0');
  assert.equal(value('255.255.255.255'), 0xffff_ffffn);
  for (const s of ['010.1.1.1', '1.2.3.04', '00.0.0.0', '::ffff:010.1.1.1']) assert.equal(parseAddress(s), undefined, s);
});

test('not addresses: zone ids, hostnames, short or overlong forms, whitespace', () => {
  for (const s of ['', ' ', 'fe80::1%eth0', '1.2.3.4%1', 'localhost', '1.2.3', '256.1.1.1', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4 ', ':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', '0x1.2.3.4', '[::1]']) {
    assert.equal(parseAddress(s), undefined, JSON.stringify(s));
  }
});

test('CIDRs: /0, /32 and /128 are exact; a prefix too long, host bits or a malformed prefix are refused', () => {
  assert.deepEqual(parseCidr('0.0.0.0/0'), { family: 4, network: 0n, prefix: 0 });
  assert.deepEqual(parseCidr('::/0'), { family: 6, network: 0n, prefix: 0 });
  assert.deepEqual(parseCidr('198.51.100.7/32'), { family: 4, network: 0xc633_6407n, prefix: 32 });
  assert.deepEqual(parseCidr('198.51.100.7'), parseCidr('198.51.100.7/32'));
  assert.deepEqual(parseCidr('::1/128'), { family: 6, network: 1n, prefix: 128 });
  assert.deepEqual(parseCidr('::1'), parseCidr('::1/128'));
  assert.equal(parseCidr('10.0.0.0/8')?.prefix, 8);
  // Up to three digits, as every caller has always read them: a leading zero is harmless in a prefix.
  assert.equal(parseCidr('10.0.0.0/08')?.prefix, 8);
  for (const s of ['1.2.3.4/0', '10.0.0.1/8', '2001:db8::1/64', '::1/127', '1.2.3.4/33', '::/129', '1.2.3.4/', '/8', '1.2.3.4/8/8', '1.2.3.4/x', '1.2.3.4/0032', '1.2.3.4 /32', 'fe80::/10%eth0']) {
    assert.equal(parseCidr(s), undefined, s);
  }
  assert.equal(cidrText(parseCidr('2001:DB8:0::/48')!), '2001:db8::/48');
  assert.equal(cidrText(parseCidr('::ffff:10.0.0.0/104')!), '::ffff:a00:0/104');
});

test('readCidr leaves the prefix to the caller: too long and host bits come back, malformed does not', () => {
  assert.deepEqual(readCidr('10.0.0.1/8'), { address: parseAddress('10.0.0.1'), prefix: 8 });
  assert.deepEqual(readCidr('::1/200'), { address: parseAddress('::1'), prefix: 200 });
  assert.equal(readCidr('10.0.0.1/1000'), undefined);
  // The caller may read the address its own way (here: a zone id dropped).
  assert.equal(readCidr('fe80::1%eth0/64', (t) => parseAddress(t.replace(/%.*$/, '')))?.address.text, 'fe80::1');
});

test('ranges: host mask, first and last address, containment, and a range back to its prefix', () => {
  assert.equal(hostMask(24, 4), 0xffn);
  assert.equal(hostMask(0, 6), (1n << 128n) - 1n);
  assert.equal(hostMask(128, 6), 0n);
  assert.deepEqual(cidrRange(parseCidr('10.1.0.0/16')!), [0x0a01_0000n, 0x0a01_ffffn]);
  assert.deepEqual(cidrRange(parseCidr('0.0.0.0/0')!), [0n, 0xffff_ffffn]);
  assert.deepEqual(cidrRange(parseCidr('::1')!), [1n, 1n]);
  const net = parseCidr('2001:db8::/32')!;
  assert.ok(cidrContains(net, parseAddress('2001:db8:ffff::1')!));
  assert.ok(!cidrContains(net, parseAddress('2001:db9::')!));
  assert.ok(!cidrContains(parseCidr('0.0.0.0/0')!, parseAddress('::')!), 'families never mix');
  assert.ok(!cidrContains(parseCidr('::ffff:0:0/96')!, parseAddress('1.2.3.4')!), 'not even through IPv4-mapped');
  assert.equal(rangeToPrefix(0x0a01_0000n, 0x0a01_ffffn, 4), 16);
  assert.equal(rangeToPrefix(0n, 0xffff_ffffn, 4), 0);
  assert.equal(rangeToPrefix(7n, 7n, 6), 128);
  assert.equal(rangeToPrefix(0x0a01_0000n, 0x0a01_fffen, 4), undefined);
  assert.equal(rangeToPrefix(1n, 2n, 4), undefined);
});

test('addressText writes the low 32 or 128 bits', () => {
  assert.equal(addressText(0x1_0000_0001n, 4), '0.0.0.1');
  assert.equal(addressText((1n << 128n) | 1n, 6), '::1');
  assert.equal(addressText((1n << 128n) - 1n, 6), 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
});

/** An independent reading of canonical text: the WHATWG URL host parser for IPv6, the text itself for IPv4. */
const canonical = (s: string) => (s.includes(':') ? new URL(`http://[${s}]/`).hostname.slice(1, -1) : s);
const anyAddress = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV6().map((s) => s.toUpperCase()));
const familyOf = (s: string): Family => (s.includes(':') ? 6 : 4);

test('property: parse → text → parse is the identity, and the integer writes back to the canonical text', () => {
  fc.assert(
    fc.property(anyAddress, (s) => {
      const a = parseAddress(s);
      assert.ok(a, s);
      assert.equal(a.family, familyOf(s));
      assert.deepEqual(parseAddress(a.text), a);
      assert.equal(a.text, canonical(s));
      assert.equal(addressText(a.value, a.family), canonical(s));
    }),
    { numRuns: 5000 },
  );
  fc.assert(
    fc.property(fc.constantFrom<Family>(4, 6), fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), (family, n) => {
      const v = family === 4 ? n >> 96n : n;
      assert.equal(parseAddress(addressText(v, family))?.value, v);
    }),
    { numRuns: 5000 },
  );
});

test('property: containment agrees with node:net BlockList, and every CIDR text reads back to itself', () => {
  const cidr = fc.tuple(anyAddress, fc.nat(128)).map(([s, n]) => {
    const a = parseAddress(s)!;
    const prefix = n % (a.family === 4 ? 33 : 129);
    return { family: a.family, network: a.value & ~hostMask(prefix, a.family), prefix };
  });
  fc.assert(
    fc.property(cidr, anyAddress, (c, s) => {
      assert.deepEqual(parseCidr(cidrText(c)), c);
      assert.equal(rangeToPrefix(...cidrRange(c), c.family), c.prefix);
      const a = parseAddress(s)!;
      const list = new BlockList();
      const type = c.family === 4 ? 'ipv4' : 'ipv6';
      list.addSubnet(addressText(c.network, c.family), c.prefix, type);
      assert.equal(cidrContains(c, a), a.family === c.family && list.check(a.text, type));
      // An address inside its own /n always is.
      const own = { family: a.family, network: a.value & ~hostMask(c.prefix, a.family), prefix: Math.min(c.prefix, a.family === 4 ? 32 : 128) };
      assert.ok(cidrContains(own, a));
    }),
    { numRuns: 3000 },
  );
});
