import { describePsycopg } from './psycopg-common.ts';

describePsycopg('psycopg2', 'psycopg 2');
