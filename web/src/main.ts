import './styles.css';
import { onUnauthorized } from './lib/api.js';
import { currentUser, loadSession, signOut, type User } from './lib/auth.js';
import { signInForm } from './lib/sign-in-form.js';
import { showDemoBanner } from './lib/demo-banner.js';
import { clear, h } from './lib/dom.js';
import { AI_LABEL } from './format.js';
import { WorklistPage } from './worklist.js';

/**
 * The radiologist's app: sign-in, worklist (#/) and viewer (#/study/<id>). Hash routes, so the
 * server only ever serves index.html; the viewer module (cornerstone) loads on first use.
 */
const root = document.getElementById('app')!;
let worklist: WorklistPage | undefined;
let viewer: { open(id: number): Promise<void>; close(): void } | undefined;

function showLogin(message?: string) {
  worklist?.destroy();
  worklist = undefined;
  viewer?.close();
  viewer = undefined;
  clear(root);
  const { form, username } = signInForm({
    heading: [
      h('h1', {}, 'fracture-triage'),
      h('p', { class: 'ai-label' }, `${AI_LABEL}. Not a medical device: every AI finding is for a radiologist to confirm.`),
    ],
    message,
    autofocus: true,
    onSignedIn: route,
  });
  root.append(form);
  username.focus();
}

function header(user: User) {
  // A superadmin may do everything an admin may (services/api/plugins/auth.ts hasRole).
  const isAdmin = user.role === 'admin' || user.role === 'superadmin';
  const out = h('button', { class: 'link', id: 'sign-out' }, 'Sign out');
  out.addEventListener('click', async () => {
    await signOut().catch(() => undefined);
    location.hash = '#/';
    showLogin();
  });
  return h('header', { class: 'topbar' },
    h('a', { href: '#/', class: 'brand' }, 'fracture-triage'),
    h('span', { class: 'ai-label badge' }, AI_LABEL),
    h('span', { class: 'spacer' }),
    h('span', { class: 'who' }, `${user.displayName} · ${user.role} · ${user.siteIds.join(', ') || 'no site'}`),
    isAdmin ? h('a', { href: '/api/reviews/export?format=csv', download: '' }, 'Export decisions (CSV)') : null,
    isAdmin ? h('a', { href: '/api/reviews/export?format=json', download: '' }, 'JSON') : null,
    isAdmin ? h('a', { href: '/admin.html', id: 'admin-link' }, 'Admin') : null,
    out);
}

let layout: { main: HTMLElement } | undefined;

function ensureLayout(user: User) {
  if (layout && root.contains(layout.main)) return layout;
  clear(root);
  const main = h('main', { class: 'content' });
  root.append(header(user), main);
  layout = { main };
  return layout;
}

async function route() {
  const user = currentUser();
  if (!user) return showLogin();
  const { main } = ensureLayout(user);
  const match = /^#\/study\/(\d+)/.exec(location.hash);
  if (!worklist) {
    worklist = new WorklistPage((id) => { location.hash = `#/study/${id}`; });
    main.append(worklist.element);
  }
  if (match) {
    worklist.hide();
    if (!viewer) {
      const { ViewerPage } = await import('./viewer/viewer.js');
      const page = new ViewerPage(worklist);
      main.append(page.element);
      viewer = page;
    }
    await viewer.open(Number(match[1]));
  } else {
    viewer?.close();
    worklist.show();
  }
}

onUnauthorized(() => showLogin('Your session ended. Please sign in again.'));
window.addEventListener('hashchange', () => void route());

loadSession().then(() => route()).catch((err) => {
  clear(root);
  root.append(h('p', { class: 'error' }, `Cannot reach the server: ${(err as Error).message}`));
});

void showDemoBanner();
