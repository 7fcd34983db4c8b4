import { describePsycopg } from './psycopg-common.ts';

describePsycopg('psycopg', 'psycopg 3');
