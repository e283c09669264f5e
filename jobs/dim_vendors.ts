#!/usr/bin/env node
/** Batch job for store.dim_vendors (see the catalog). Usage: node dist/jobs/dim_vendors.js --help */
import { catalog } from './catalog';
import { main, runJobCli } from './lib/cli';

main(() => runJobCli(catalog, 'store.dim_vendors'));
