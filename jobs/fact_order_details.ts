#!/usr/bin/env node
/** Batch job for store.fact_order_details (see the catalog). Usage: node dist/jobs/fact_order_details.js --help */
import { catalog } from './catalog';
import { main, runJobCli } from './lib/cli';

main(() => runJobCli(catalog, 'store.fact_order_details'));
