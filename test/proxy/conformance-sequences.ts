/**
 * The scripted sequences of the conformance test. Each runs on a fresh connection, to
 * PostgreSQL and to the proxy, and must get the same replies. Table names are unique per
 * sequence, so sequences do not see each other's rows.
 */

import { EXTENDED } from './conformance-extended.ts';
import { MORE } from './conformance-more.ts';
import type { Sequence } from './conformance-run.ts';
import { SIMPLE } from './conformance-simple.ts';

export const SEQUENCES: Sequence[] = [...SIMPLE, ...EXTENDED, ...MORE];
