// Drives Debian chromium through imagemcp's OAuth pages: opens an authorization URL, signs in,
// picks an organisation on the consent page when CONSENT_ORG names one (its option's value, an
// org id), approves, and prints the redirect it was sent to (JSON on stdout, with the picker's
// options as the page offered them). The redirect is captured from the browser's requests, so no
// server needs to listen there.
//
// usage: node consent.mjs AUTHORIZE_URL REDIRECT_PREFIX   (EMAIL and PASSWORD come from the env,
// so they never appear in a process listing)
import { chromium } from 'playwright-core';

const [authorizeUrl, redirectPrefix] = process.argv.slice(2);
const email = process.env.CONSENT_EMAIL;
const password = process.env.CONSENT_PASSWORD;
const pickOrg = process.env.CONSENT_ORG;
if (!authorizeUrl || !redirectPrefix || !email || !password) {
  console.error('usage: CONSENT_EMAIL=… CONSENT_PASSWORD=… node consent.mjs AUTHORIZE_URL REDIRECT_PREFIX');
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
try {
  const page = await browser.newPage();
  // Fail with the step that broke instead of hanging until the caller's timeout.
  page.setDefaultTimeout(20000);
  let resolveRedirect;
  const redirected = new Promise((r) => { resolveRedirect = r; });
  // The consent form's answer is a 303 to the redirect URI; route handlers do not see redirect
  // hops, so watch requests instead (nothing listens there; the navigation then fails, harmlessly).
  page.on('request', (request) => {
    if (request.url().startsWith(redirectPrefix)) resolveRedirect(request.url());
  });
  await page.goto(authorizeUrl);
  const title = await page.title();
  // The login page: accessible labels name the fields.
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  // The consent page names the client, the redirect host and the scopes.
  await page.getByRole('heading', { name: /^Authorize / }).waitFor();
  const consent = await page.locator('main').innerText();
  // The organisation picker, as a person sees it: a labelled select.
  const picker = page.getByLabel('Organisation');
  const orgs = await picker.locator('option').evaluateAll((options) =>
    options.map((o) => ({ value: o.value, label: o.textContent, selected: o.selected })));
  if (pickOrg) {
    const picked = await picker.selectOption(pickOrg);
    if (picked.length !== 1 || picked[0] !== pickOrg) throw new Error('could not pick ' + pickOrg);
  }
  await page.getByRole('button', { name: 'Approve' }).click({ noWaitAfter: true });
  const redirect = await Promise.race([
    redirected,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no redirect to ' + redirectPrefix)), 20000)),
  ]);
  process.stdout.write(JSON.stringify({ redirect, login_title: title, consent, orgs }) + '\n');
} finally {
  await browser.close();
}
