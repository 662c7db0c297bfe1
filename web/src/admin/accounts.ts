// Admin panel (issue 16): users and API keys of the admin's sites (a superadmin: all) — reset a
// password, disable or enable a user, rotate or expire a key. A new password or key is shown once,
// in a box the admin copies it from; it is never fetched again.
import { api } from '../lib/api.js';
import { clear, h } from '../lib/dom.js';
import type { ManagedKey, ManagedUser } from '../../../services/contract/index.js';
import { time } from './format.js';

type Say = (text: string, error?: boolean) => void;

export class AccountsPanel {
  private readonly usersBody = h('tbody', { id: 'users' });
  private readonly keysBody = h('tbody', { id: 'api-keys' });
  /** The one place a new secret appears; cleared by "Done" or the next action. */
  private readonly secretBox = h('div', { class: 'notice', id: 'new-secret', hidden: true, role: 'status' });
  readonly element = h('section', { class: 'panel wide', id: 'accounts-panel' },
    h('h2', {}, 'Users and API keys'),
    this.secretBox,
    h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ...['User', 'Name', 'Role', 'Sites', 'State', ''].map((t) => h('th', {}, t)))), this.usersBody)),
    h('div', { class: 'table-scroll' }, h('table', { class: 'data' },
      h('thead', {}, h('tr', {}, ...['Key', 'Site', 'Label', 'State', 'Created', 'Expires', 'Last used', ''].map((t) => h('th', {}, t)))), this.keysBody)));

  constructor(private readonly say: Say) {}

  async load(): Promise<void> {
    try {
      const [users, keys] = await Promise.all([api<ManagedUser[]>('/api/admin/users'), api<ManagedKey[]>('/api/admin/keys')]);
      clear(this.usersBody);
      for (const u of users) this.usersBody.append(this.userRow(u));
      clear(this.keysBody);
      for (const k of keys) this.keysBody.append(this.keyRow(k));
    } catch (err) {
      this.say(`accounts unavailable: ${(err as Error).message}`, true);
    }
  }

  private showSecret(label: string, secret: string) {
    clear(this.secretBox);
    const done = h('button', { class: 'link', id: 'new-secret-done' }, 'Done');
    done.addEventListener('click', () => { clear(this.secretBox); this.secretBox.hidden = true; });
    this.secretBox.append(h('p', {}, `${label} Copy it now; it is not shown again.`), h('code', { id: 'new-secret-value' }, secret), done);
    this.secretBox.hidden = false;
  }

  private hideSecret() {
    clear(this.secretBox);
    this.secretBox.hidden = true;
  }

  private button(text: string, cls: string, confirmText: string, run: () => Promise<void>) {
    const b = h('button', { class: cls }, text);
    b.addEventListener('click', async () => {
      if (!window.confirm(confirmText)) return;
      this.hideSecret();
      try {
        await run();
      } catch (err) {
        this.say((err as Error).message, true);
      }
      await this.load();
    });
    return b;
  }

  private userRow(u: ManagedUser) {
    const path = `/api/admin/users/${encodeURIComponent(u.username)}`;
    const reset = this.button('Reset password', 'reset-password', `Set a new password for ${u.username}? Their sessions end now.`, async () => {
      const r = await api<{ password: string }>(`${path}/reset-password`, { method: 'POST', body: {} });
      this.say(`Password of ${u.username} reset; their sessions ended.`);
      this.showSecret(`New password for ${u.username}.`, r.password);
    });
    const toggle = u.disabled
      ? this.button('Enable', 'enable', `Let ${u.username} sign in again?`, async () => {
        await api(`${path}/enable`, { method: 'POST', body: {} });
        this.say(`${u.username} enabled.`);
      })
      : this.button('Disable', 'disable', `Disable ${u.username}? Their sessions and open pages end now.`, async () => {
        await api(`${path}/disable`, { method: 'POST', body: {} });
        this.say(`${u.username} disabled.`);
      });
    return h('tr', { dataset: { user: u.username } },
      h('td', {}, u.username), h('td', {}, u.displayName), h('td', {}, u.role), h('td', {}, u.siteIds.join(', ') || '—'),
      h('td', {}, h('span', { class: `state ${u.disabled ? 'bad' : 'good'}` }, u.disabled ? 'disabled' : 'active')),
      h('td', { class: 'actions' }, reset, toggle));
  }

  private keyRow(k: ManagedKey) {
    const actions = h('td', { class: 'actions' });
    if (k.state === 'active') {
      const path = `/api/admin/keys/${encodeURIComponent(k.id)}`;
      actions.append(
        this.button('Rotate', 'rotate', `Make a new key for ${k.siteId} (${k.label})? The old one keeps working for 24 hours so senders can switch.`, async () => {
          const r = await api<{ id: string; key: string; oldExpiresAt: string }>(`${path}/rotate`, { method: 'POST', body: { graceHours: 24 } });
          this.say(`Key ${r.id} replaces ${k.id}, which stops working at ${time(Date.parse(r.oldExpiresAt))}.`);
          this.showSecret(`New API key ${r.id} for ${k.siteId}.`, r.key);
        }),
        this.button('Expire now', 'expire', `Stop key ${k.id} (${k.siteId}, ${k.label}) now? Senders using it get 401.`, async () => {
          await api(`${path}/expire`, { method: 'POST', body: { at: 'now' } });
          this.say(`Key ${k.id} no longer works.`);
        }));
    }
    const when = (iso: string | null) => (iso ? time(Date.parse(iso)) : '—');
    return h('tr', { dataset: { key: k.id } },
      h('td', {}, k.id), h('td', {}, k.siteId), h('td', {}, k.label),
      h('td', {}, h('span', { class: `state ${k.state === 'active' ? 'good' : 'bad'}` }, k.state)),
      h('td', {}, when(k.createdAt)), h('td', {}, when(k.expiresAt)), h('td', {}, when(k.lastUsedAt)), actions);
  }
}
