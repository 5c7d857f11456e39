/** The shape of the local Infisical's seed (see seed.ts for the file format). */
import type { KubernetesAuthConfig } from './kube-jwt.js';

export interface SeedImport {
  environment: string;
  path: string;
}
export interface SeedFolder {
  path: string;
  secrets: Record<string, string>;
  imports: SeedImport[];
}
export interface SeedEnvironment {
  slug: string;
  name: string;
  folders: SeedFolder[];
}
export interface SeedProject {
  id: string;
  name: string;
  slug: string;
  environments: SeedEnvironment[];
}
export interface LockoutConfig {
  threshold: number;
  durationS: number;
  counterResetS: number;
}
export interface SeedIdentity {
  id: string;
  name: string;
  kubernetes?: KubernetesAuthConfig;
  universal?: { clientId: string; clientSecret: string; lockout: LockoutConfig | false };
  accessTokenTTL?: number;
  accessTokenMaxTTL?: number;
  accessTokenNumUsesLimit?: number;
  /** Project ids the identity is a member of; undefined = every project. */
  projects?: string[];
}
export interface Seed {
  file: string;
  projects: SeedProject[];
  identities: SeedIdentity[];
}
