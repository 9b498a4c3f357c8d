import { deriveDomainKey } from '../util/hash.js';
import type { DedupScope } from './store-config.js';

/**
 * Dedup domains: which users' identical parts are stored once together
 * ('' is the global domain), and the key each domain's blob names are
 * hashed with (derived from the store's secret; none for the global one).
 */
export class DedupDomains {
  private readonly keys = new Map<string, Buffer | null>();
  constructor(
    private readonly scope: DedupScope,
    private readonly secret: Buffer,
  ) {}

  of(user: string): string {
    switch (this.scope) {
      case 'global':
        return '';
      case 'user':
        return `user:${user}`;
      case 'tenant': {
        const at = user.lastIndexOf('@');
        return `tenant:${at >= 0 ? user.slice(at + 1).toLowerCase() : user}`;
      }
    }
  }

  key(domain: string): Buffer | null {
    if (domain === '') return null;
    let k = this.keys.get(domain);
    if (k === undefined) {
      k = deriveDomainKey(this.secret, domain);
      this.keys.set(domain, k);
    }
    return k;
  }
}
