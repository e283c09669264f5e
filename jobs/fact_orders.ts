#!/usr/bin/env node
/** Batch job for store.fact_orders (see the catalog). Usage: node dist/jobs/fact_orders.js --help */
import { catalog } from './catalog';
import { main, runJobCli } from './lib/cli';

main(() => runJobCli(catalog, 'store.fact_orders'));
