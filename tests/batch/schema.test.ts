/** Schemas derived from the catalog, validation reasons, masking and redaction. */
import fs from 'node:fs';
import path from 'node:path';
import { catalog } from '../../jobs/catalog';
import type { Catalog, DestinationTable } from '../../jobs/lib/catalog-types';
import { assertCatalogConsistent, findSource } from '../../jobs/lib/catalog-check';
import { maskCard, redactRaw } from '../../jobs/lib/pii';
import { jsonSchemaForSource, rowValidator, stagedValues } from '../../jobs/lib/schema';

const order = findSource(catalog, 'order');
const good = {
  order_id: '1000', total_item: '4', shipping_fee: '7', tax: '0.0925', total_cost: '50.02',
  order_date: '2018-10-17', delivery_date: '2018-10-20', ship_name: 'Anna', ship_address: 'x',
  tracking_number: 'ZW60001', delivery_status: '1',
};

test('the JSON Schema follows the catalog: all columns, keys non-null, typed patterns', () => {
  const s = jsonSchemaForSource(order) as { required: string[]; properties: Record<string, Record<string, unknown>> };
  expect(s.required).toEqual(order.columns.map((c) => c.name));
  expect(s.properties.order_id).toEqual({ type: 'string', pattern: '^[0-9]+$' });
  expect(s.properties.order_date).toEqual({ type: ['string', 'null'], format: 'date' });
  expect(s.properties.delivery_status).toEqual({ type: ['string', 'null'], enum: ['0', '1', null] });
});

test('validation reasons name the column and the value', () => {
  const v = rowValidator(order);
  expect(v.validate(good)).toEqual([]);
  expect(v.validate({ ...good, order_id: null })).toEqual([
    { column: 'order_id', code: 'missing_key', reason: "key column 'order_id' is empty" },
  ]);
  expect(v.validate({ ...good, total_item: '4.5', delivery_status: '2' }).map((e) => e.code)).toEqual([
    'not_an_integer',
    'bad_boolean',
  ]);
  expect(v.validate({ ...good, tax: '0.09251' })[0].code).toBe('not_a_number'); // would be rounded
  expect(v.validate({ ...good, order_id: '1.0E+3' })[0].code).toBe('scientific_notation_id');
});

test('cards are masked to the last four digits and 0/1 become booleans', () => {
  expect(maskCard('4564148144006084')).toBe('************6084');
  const paid = findSource(catalog, 'orders_paid_creditcard');
  expect(stagedValues(paid, { credit_card_number: '4564148144006084', order_id: '1' })).toEqual(['************6084', '1']);
  expect(stagedValues(order, good).at(-1)).toBe('true');
});

test('quarantined raw rows never carry a password or a full card number', () => {
  const user = findSource(catalog, 'user');
  const header = user.columns.map((c) => c.name);
  expect(redactRaw(user, header, '1x\tanna\twhite00\tAnna\taddr\ta@b.c\t123')).toBe('1x\tanna\t[redacted]\tAnna\taddr\ta@b.c\t123');
  expect(redactRaw(user, header, '1\tanna white00 Anna')).toMatch(/^\[withheld/);
  const paid = findSource(catalog, 'orders_paid_creditcard');
  expect(redactRaw(paid, ['credit_card_number', 'order_id'], '4564148144006084,x')).toBe('************6084,x');
});

test('an inconsistent catalog is rejected with every problem listed', () => {
  const bad: Catalog = {
    ...catalog,
    destinations: [{ ...catalog.destinations[0], key: ['nope'], sources: ['missing'] } as DestinationTable],
  };
  expect(() => assertCatalogConsistent(bad)).toThrow(/unknown source missing[\s\S]*key column nope is not a column/);
});

test('every batch destination has its job file, naming its own table', () => {
  for (const d of catalog.destinations) {
    if (d.mode !== 'batch') continue;
    const file = path.join(__dirname, '..', '..', 'jobs', `${d.table}.ts`);
    expect(fs.existsSync(file)).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toContain(`runJobCli(catalog, '${d.name}')`);
    expect(fs.existsSync(path.join(__dirname, '..', '..', 'jobs', 'transforms', `${d.transform}.sql`))).toBe(true);
  }
});
