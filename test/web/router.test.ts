// The web UI's server side without a browser: landing page and CSP, hashed static files, .rdp downloads, no-store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connectEndpoint, rdpFileText, rdpFilename } from '../../src/connect/rdp.ts';
import { startBroker, tempDir, testConfig, type RunningBroker } from '../helpers/broker.ts';

describe('web UI routes', () => {
  let broker: RunningBroker;
  let cleanup: () => void;

  before(async () => {
    const t = tempDir('portcullis-web-routes-');
    cleanup = t.cleanup;
    broker = await startBroker(testConfig(t.dir, { dev: { embeddedIdp: true } }));
  });
  after(async () => {
    await broker?.stop();
    cleanup?.();
  });

  test('signed out, / is the landing page: strict CSP, no inline script or style, no-store', async () => {
    const res = await fetch(`${broker.url}/`);
    assert.equal(res.status, 200);
    const html = await res.text();
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'; ?script-src 'self'; ?style-src 'self';/);
    assert.match(csp, new RegExp(`form-action 'self' ${broker.url.replace(/[.]/g, '\\.')}(;|$)`), 'sign-out may follow the IdP logout redirect');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    assert.match(html, /href="\/auth\/login\?returnTo=%2F"/);
    assert.doesNotMatch(html, /<script>|<style>|\son[a-z]+=/i, 'nothing inline that CSP would have to allow');
    assert.doesNotMatch(html, /(src|href)="https?:/, 'no external assets');
  });

  test('the script and stylesheet are served under content-hashed names, cached for good; other names 404', async () => {
    const html = await (await fetch(`${broker.url}/`)).text();
    const js = /<script type="module" src="(\/ui\/app\.[0-9a-f]{12}\.js)">/.exec(html)?.[1];
    const css = /<link rel="stylesheet" href="(\/ui\/app\.[0-9a-f]{12}\.css)">/.exec(html)?.[1];
    assert.ok(js && css, 'both assets are linked');
    const script = await fetch(`${broker.url}${js}`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(script.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/.test(await script.text()), false, 'the UI builds DOM from text only');
    assert.match((await fetch(`${broker.url}${css}`)).headers.get('content-type') ?? '', /^text\/css/);
    assert.equal((await fetch(`${broker.url}/ui/app.js`)).status, 404);
  });

  test('an .rdp download needs a session: signed out it sends the browser to sign in', async () => {
    const res = await fetch(`${broker.url}/ui/grants/g_0123456789abcdef/connect.rdp`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/auth/login?returnTo=%2Fgrants%2Fg_0123456789abcdef', 'and back to the grant page after');
  });

  test('one .rdp generator: the grant port on the configured host, redirection settings, no injected lines', () => {
    const rdp = (connect: string, port: number) => {
      const ep = connectEndpoint(connect, port)!;
      return rdpFileText(ep.host, ep.port);
    };
    assert.equal(rdp('dc01.acme.example:3389', 3389).split('\r\n')[0], 'full address:s:dc01.acme.example:3389');
    assert.equal(rdp('gw.example', 13389).split('\r\n')[0], 'full address:s:gw.example:13389');
    assert.equal(rdp('[2001:db8::1]:3390', 3390).split('\r\n')[0], 'full address:s:[2001:db8::1]:3390');
    assert.match(rdp('gw.example', 3389), /\r\nredirectdrives:i:0\r\n/);
    assert.throws(() => rdp('host\r\nalternate shell:s:cmd.exe', 3389), { code: 'RDP_BAD_HOST' });
    assert.doesNotMatch(rdp('gw.example', 3389), /password/i);
    assert.equal(rdpFilename('acme-dc01'), 'acme-dc01.rdp');
    assert.equal(rdpFilename('a"b/c'), 'a_b_c.rdp');
  });
});
