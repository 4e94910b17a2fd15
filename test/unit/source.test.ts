// Source addresses: canonical CIDRs, never wider than allowed, /0 never (invariant 2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalAddress, forwardedAddress, parseSource } from '../../src/broker/source.ts';

const hostOnly = { ipv4: 32, ipv6: 128 };

test('addresses become host CIDRs in canonical form', () => {
  assert.equal(parseSource('198.51.100.7', hostOnly).cidr, '198.51.100.7/32');
  assert.equal(parseSource('2001:DB8:0:0::1', hostOnly).cidr, '2001:db8::1/128');
  assert.equal(parseSource('::ffff:198.51.100.7', hostOnly).cidr, '198.51.100.7/32');
  assert.equal(parseSource('::ffff:c633:6407', hostOnly).cidr, '198.51.100.7/32', 'IPv4-mapped in hex is IPv4 too');
  assert.equal(parseSource('::1.2.3.4', hostOnly).cidr, '::102:304/128');
  assert.equal(parseSource('198.51.100.7/32', hostOnly).prefixLength, 32);
  assert.equal(canonicalAddress('::ffff:127.0.0.1'), '127.0.0.1');
  assert.equal(canonicalAddress('fe80::1%eth0'), 'fe80::1');
  assert.equal(canonicalAddress('nope'), undefined);
});

test('refused, not normalised: zone ids (on IPv4 anywhere, on IPv6 in a source), CIDR text as a forwarded address', () => {
  assert.equal(canonicalAddress('10.0.0.1%eth0'), undefined, 'a socket address never has a zone on IPv4');
  assert.equal(canonicalAddress('2001:db8::1%eth0'), undefined, 'a zone belongs to link-local addresses only');
  for (const s of ['10.0.0.1%eth0', 'fe80::1%eth0', '10.0.0.0%eth0/24']) assert.throws(() => parseSource(s, hostOnly), { code: 'INVALID_SOURCE_IP' }, s);
  assert.equal(forwardedAddress('198.51.100.7'), '198.51.100.7');
  assert.equal(forwardedAddress('::ffff:198.51.100.7'), '198.51.100.7');
  for (const s of ['10.0.0.0/24', '10.213.0.0/16', '10.0.0.1/32', '10.0.0.1%eth0', 'fe80::1%eth0', '2001:db8::/64', 'unknown', '']) assert.equal(forwardedAddress(s), undefined, s);
});

test('sources no connection comes from are refused: unspecified, broadcast, multicast, and ranges containing them', () => {
  const wide = { ipv4: 8, ipv6: 8 };
  for (const s of ['0.0.0.0', '0.0.0.0/32', '0.1.2.3', '0.0.0.0/8', '255.255.255.255', '255.255.255.255/32', '255.0.0.0/8', '224.0.0.1', '239.255.255.250', '224.0.0.0/8', '::', '::/128', 'ff02::1', 'ff00::/8', '::ffff:224.0.0.1', '::ffff:0.0.0.0']) {
    assert.throws(() => parseSource(s, wide), (e: Error & { code: string }) => e.code === 'INVALID_SOURCE_IP' && /which no connection comes from/.test(e.message), s);
  }
  for (const s of ['1.0.0.0/8', '223.255.255.255', '240.0.0.1', '254.255.255.255', '::1', 'fe00::/8']) assert.ok(parseSource(s, wide).cidr, s);
});

test('/0 is refused whatever the limits; wider than the limit is refused; host bits are refused', () => {
  const wide = { ipv4: 8, ipv6: 16 };
  for (const s of ['0.0.0.0/0', '::/0', '1.2.3.4/0']) assert.throws(() => parseSource(s, wide), { code: 'SOURCE_TOO_WIDE' });
  assert.throws(() => parseSource('10.0.0.0/8', hostOnly), { code: 'SOURCE_TOO_WIDE' });
  assert.equal(parseSource('10.0.0.0/8', wide).cidr, '10.0.0.0/8');
  assert.throws(() => parseSource('10.0.0.1/8', wide), { code: 'INVALID_SOURCE_IP' });
  assert.throws(() => parseSource('2001:db8::1/64', { ipv4: 32, ipv6: 64 }), { code: 'INVALID_SOURCE_IP' });
  assert.equal(parseSource('2001:db8::/64', { ipv4: 32, ipv6: 64 }).cidr, '2001:db8::/64');
  for (const s of ['1.2.3.4/33', '1.2.3', '1.2.3.4/x', '1.2.3.4/8/8', 'example.com', '', ' ', '1.2.3.4 5.6.7.8', '::1/129']) {
    assert.throws(() => parseSource(s, wide), (e: { code: string }) => e.code === 'INVALID_SOURCE_IP' || e.code === 'SOURCE_TOO_WIDE', s);
  }
});

test('property: an accepted source is never wider than the limit and always contains the given address', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 8, max: 32 }), (ip, len, limit) => {
      let s;
      try {
        s = parseSource(`${ip}/${len}`, { ipv4: limit, ipv6: 128 });
      } catch (e) {
        const code = (e as { code: string }).code;
        return code === 'SOURCE_TOO_WIDE' ? len < limit || len === 0 : code === 'INVALID_SOURCE_IP';
      }
      return s.prefixLength >= limit && s.prefixLength > 0 && s.cidr === `${ip.split('.').map(Number).join('.')}/${len}`;
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(fc.ipV6(), (ip) => {
      let s;
      try {
        s = parseSource(ip, hostOnly);
      } catch (e) {
        // Only the unspecified address and multicast (also as IPv4-mapped) are refused.
        return (e as { code: string }).code === 'INVALID_SOURCE_IP' && /which no connection comes from/.test((e as Error).message);
      }
      return s.prefixLength === 128 && s.family === 6 || s.family === 4;
    }),
    { numRuns: 1000 },
  );
});
