import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_STREAKS, FaultJudge, streakKey, type Verdict } from '../../src/delivery/fault-judge.ts';
import { DeliveryFault, type FaultKind } from '../../src/errors.ts';

/** A fault as the SMTP adapter makes it: what happened, then the server's reply. */
function fault(kind: FaultKind, reply: string): DeliveryFault {
  return new DeliveryFault(kind, `${kind} (RCPT TO): ${reply}`, { reply });
}

const REFUSED_RELAY = fault('refused', '554 5.7.1 <bob@example.org>: Relay access denied');
const CONNECTION_REFUSED = fault('unreachable', 'ECONNREFUSED: connect ECONNREFUSED 203.0.113.7:587');
const TIMED_OUT = fault('unreachable', 'ETIMEDOUT: Connection timeout');
const CLOSING = fault('unreachable', '421 4.7.0 mx.example.org Error: too many connections from 203.0.113.7');
const greylisted = (to: string) => fault('recipient-temporary', `450 4.2.0 <${to}>: Recipient address rejected: Greylisted`);
const mailboxBusy = (to: string) => fault('recipient-temporary', `450 4.2.1 <${to}>: Mailbox busy, try again later`);
const unknownUser = (to: string) => fault('recipient-permanent', `550 5.1.1 <${to}>: Recipient address rejected: User unknown in local recipient table`);
const mailboxFull = (to: string) => fault('recipient-permanent', `552 5.2.2 <${to}>: Mailbox full`);
const transactionFailed = (to: string) => fault('unclear-permanent', `554 Transaction failed for ${to}`);

/** A judge on a clock the test moves by hand. */
function judgeAt(start = 0, options: { maxHoldMs?: number; streaks?: Partial<typeof DEFAULT_STREAKS> } = {}) {
  const clock = { now: start };
  const judge = new FaultJudge<string>({ ...options, now: () => clock.now });
  return { judge, clock };
}

/** Fails `count` items of a group (`${prefix}1`, `${prefix}2`, …), each with `faultFor(item)`; returns every verdict given. */
function failMany(judge: FaultJudge<string>, group: string, prefix: string, count: number, faultFor: (item: string) => DeliveryFault): Verdict<string>[] {
  const verdicts: Verdict<string>[] = [];
  for (let i = 1; i <= count; i++) {
    const item = `${prefix}${i}`;
    verdicts.push(...judge.failure(group, item, faultFor(`${item}@example.org`)));
  }
  return verdicts;
}

const itemsOf = (verdict: Verdict<string> | undefined): string[] =>
  verdict === undefined ? [] : verdict.kind === 'individual' ? verdict.failures.map((f) => f.item) : verdict.items;

describe('FaultJudge', () => {
  it('holds a failure until there is evidence, and lists it among the held items', () => {
    const { judge } = judgeAt();
    expect(judge.failure('7', 'a1', unknownUser('a1@example.org'))).toEqual([]);
    expect(judge.failure('7', 'a2', greylisted('a2@example.org'))).toEqual([]);
    expect(judge.failure('8', 'b1', CONNECTION_REFUSED)).toEqual([]);
    expect(judge.heldItems().sort()).toEqual(['a1', 'a2', 'b1']);
  });

  it('a success releases the failures its group held, each as its recipient\u2019s own, with its fault', () => {
    const { judge } = judgeAt();
    const a1 = unknownUser('a1@example.org');
    const a2 = greylisted('a2@example.org');
    judge.failure('7', 'a1', a1);
    judge.failure('7', 'a2', a2);
    judge.failure('8', 'b1', CONNECTION_REFUSED);

    expect(judge.success('7')).toEqual([
      { kind: 'individual', group: '7', failures: [{ item: 'a1', fault: a1 }, { item: 'a2', fault: a2 }] },
    ]);
    expect(judge.heldItems()).toEqual(['b1']);
    expect(judge.success('7')).toEqual([]);
  });

  it('a success in a group that holds nothing decides nothing', () => {
    const { judge } = judgeAt();
    expect(judge.success('7')).toEqual([]);
  });

  describe('a streak of alike failures is the server\u2019s', () => {
    it(`unreachable: ${DEFAULT_STREAKS.unreachable} dead connections, whatever each said, pause the group as an outage with everything it held`, () => {
      const { judge } = judgeAt();
      const dead = [CONNECTION_REFUSED, TIMED_OUT, CLOSING];
      expect(judge.failure('7', 'bounced', unknownUser('x@example.org'))).toEqual([]);
      const verdicts: Verdict<string>[] = [];
      for (let i = 0; i < DEFAULT_STREAKS.unreachable; i++) {
        const got = judge.failure('7', `u${i + 1}`, dead[i % dead.length]!);
        if (i < DEFAULT_STREAKS.unreachable - 1) expect(got).toEqual([]);
        verdicts.push(...got);
      }
      expect(verdicts).toHaveLength(1);
      const [verdict] = verdicts;
      expect(verdict).toMatchObject({ kind: 'server', group: '7', pause: 'outage' });
      expect(itemsOf(verdict)).toEqual(['bounced', ...Array.from({ length: DEFAULT_STREAKS.unreachable }, (_, i) => `u${i + 1}`)]);
      expect(verdict?.kind === 'server' && verdict.reason).toContain(dead[(DEFAULT_STREAKS.unreachable - 1) % dead.length]!.message);
      expect(judge.heldItems()).toEqual([]);
    });

    it(`recipient-temporary: ${DEFAULT_STREAKS['recipient-temporary']} deferrals with the same reply (addresses aside) are an outage`, () => {
      const { judge } = judgeAt();
      const n = DEFAULT_STREAKS['recipient-temporary'];
      expect(failMany(judge, '7', 't', n - 1, greylisted)).toEqual([]);
      const verdicts = judge.failure('7', `t${n}`, greylisted(`t${n}@example.org`));
      expect(verdicts).toHaveLength(1);
      expect(verdicts[0]).toMatchObject({ kind: 'server', group: '7', pause: 'outage' });
      expect(itemsOf(verdicts[0])).toEqual(Array.from({ length: n }, (_, i) => `t${i + 1}`));
    });

    it('recipient-temporary: deferrals with different replies are each their recipient\u2019s', () => {
      const { judge } = judgeAt();
      const n = DEFAULT_STREAKS['recipient-temporary'];
      for (let i = 1; i < n; i++) {
        expect(judge.failure('7', `g${i}`, greylisted(`g${i}@example.org`))).toEqual([]);
        expect(judge.failure('7', `b${i}`, mailboxBusy(`b${i}@example.org`))).toEqual([]);
      }
      expect(judge.heldItems()).toHaveLength(2 * (n - 1));
      expect(judge.settle('7')).toMatchObject([{ kind: 'individual', group: '7' }]);
    });

    it(`recipient-permanent: ${DEFAULT_STREAKS['recipient-permanent']} bounces with the same reply mean the server refuses us; one fewer decides nothing`, () => {
      const { judge } = judgeAt();
      const n = DEFAULT_STREAKS['recipient-permanent'];
      expect(failMany(judge, '7', 'p', n - 1, unknownUser)).toEqual([]);
      expect(judge.heldItems()).toHaveLength(n - 1);
      const verdicts = judge.failure('7', `p${n}`, unknownUser(`p${n}@example.org`));
      expect(verdicts).toHaveLength(1);
      expect(verdicts[0]).toMatchObject({ kind: 'server', group: '7', pause: 'refused' });
      expect(itemsOf(verdicts[0])).toHaveLength(n);
      expect(verdicts[0]?.kind === 'server' && verdicts[0].reason).toMatch(/^10 recipients refused with the same reply in a row/);
    });

    it(`unclear-permanent: ${DEFAULT_STREAKS['unclear-permanent']} alike mean the server refuses us`, () => {
      const { judge } = judgeAt();
      const n = DEFAULT_STREAKS['unclear-permanent'];
      expect(failMany(judge, '7', 'c', n - 1, transactionFailed)).toEqual([]);
      const verdicts = judge.failure('7', `c${n}`, transactionFailed(`c${n}@example.org`));
      expect(verdicts).toMatchObject([{ kind: 'server', group: '7', pause: 'refused' }]);
      expect(itemsOf(verdicts[0])).toEqual(Array.from({ length: n }, (_, i) => `c${i + 1}`));
    });

    it('different replies do not count toward one another, but the streak that forms releases every item the group held', () => {
      const { judge } = judgeAt();
      const n = DEFAULT_STREAKS['unclear-permanent'];
      // Interleave: unknown users and full mailboxes (recipient-permanent, two replies) and unclear ones.
      const verdicts: Verdict<string>[] = [];
      for (let i = 1; i < n; i++) {
        verdicts.push(...judge.failure('7', `u${i}`, unknownUser(`u${i}@example.org`)));
        verdicts.push(...judge.failure('7', `f${i}`, mailboxFull(`f${i}@example.org`)));
        verdicts.push(...judge.failure('7', `c${i}`, transactionFailed(`c${i}@example.org`)));
      }
      expect(verdicts).toEqual([]);
      const last = judge.failure('7', `c${n}`, transactionFailed(`c${n}@example.org`));
      expect(last).toMatchObject([{ kind: 'server', pause: 'refused' }]);
      expect(itemsOf(last[0]).sort()).toEqual([...Array.from({ length: n - 1 }, (_, i) => [`u${i + 1}`, `f${i + 1}`, `c${i + 1}`]).flat(), `c${n}`].sort());
      expect(judge.heldItems()).toEqual([]);
    });

    it('the same reply with a different kind is not alike', () => {
      const { judge } = judgeAt(0, { streaks: { 'recipient-temporary': 2, 'unclear-permanent': 2 } });
      const reply = '554 Transaction failed';
      expect(judge.failure('7', 'a', fault('unclear-permanent', reply))).toEqual([]);
      expect(judge.failure('7', 'b', fault('recipient-temporary', reply))).toEqual([]);
    });

    it('takes its streak lengths from the options', () => {
      const { judge } = judgeAt(0, { streaks: { unreachable: 1 } });
      expect(judge.failure('7', 'a', TIMED_OUT)).toMatchObject([{ kind: 'server', pause: 'outage', items: ['a'] }]);
      // The others keep their defaults.
      expect(failMany(judge, '7', 'p', DEFAULT_STREAKS['recipient-permanent'] - 1, unknownUser)).toEqual([]);
    });
  });

  it('a refusal pauses the group at once, with what it held and this item, and leaves other groups alone', () => {
    const { judge } = judgeAt();
    judge.failure('7', 'a1', unknownUser('a1@example.org'));
    judge.failure('7', 'a2', CONNECTION_REFUSED);
    judge.failure('8', 'b1', CONNECTION_REFUSED);
    const a1 = unknownUser('a1@example.org');
    const verdicts = judge.failure('7', 'a3', REFUSED_RELAY);
    expect(verdicts).toEqual([
      {
        kind: 'server',
        group: '7',
        pause: 'refused',
        reason: REFUSED_RELAY.message,
        items: ['a1', 'a2', 'a3'],
        failures: [
          { item: 'a1', fault: a1 },
          { item: 'a2', fault: CONNECTION_REFUSED },
          { item: 'a3', fault: REFUSED_RELAY },
        ],
        cause: 'refused',
      },
    ]);
    expect(judge.heldItems()).toEqual(['b1']);
  });

  it('a refusal in a group that holds nothing pauses it with this item alone', () => {
    const { judge } = judgeAt();
    expect(judge.failure('7', 'a', REFUSED_RELAY)).toMatchObject([{ kind: 'server', pause: 'refused', items: ['a'] }]);
  });

  it('groups do not mix: failures of other groups neither add to a streak nor are released by its success', () => {
    const { judge } = judgeAt();
    const n = DEFAULT_STREAKS.unreachable;
    for (let i = 1; i < n; i++) {
      expect(judge.failure('7', `a${i}`, TIMED_OUT)).toEqual([]);
      expect(judge.failure('8', `b${i}`, TIMED_OUT)).toEqual([]);
    }
    expect(judge.success('8')).toEqual([{ kind: 'individual', group: '8', failures: Array.from({ length: n - 1 }, (_, i) => ({ item: `b${i + 1}`, fault: TIMED_OUT })) }]);
    const verdicts = judge.failure('7', `a${n}`, TIMED_OUT);
    expect(verdicts).toMatchObject([{ kind: 'server', group: '7', pause: 'outage' }]);
    expect(itemsOf(verdicts[0])).toEqual(Array.from({ length: n }, (_, i) => `a${i + 1}`));
  });

  it('a success breaks a streak: the failures before it do not count after it', () => {
    const { judge } = judgeAt();
    const n = DEFAULT_STREAKS.unreachable;
    failMany(judge, '7', 'a', n - 1, () => TIMED_OUT);
    expect(judge.success('7')).toHaveLength(1);
    expect(failMany(judge, '7', 'b', n - 1, () => TIMED_OUT)).toEqual([]);
  });

  it('settle makes dead sessions an outage however few they are, when nothing went through since they failed', () => {
    const { judge, clock } = judgeAt();
    judge.failure('7', 'a', CONNECTION_REFUSED);
    expect(judge.settle('7')).toMatchObject([{ kind: 'server', group: '7', pause: 'outage', cause: 'unreachable', items: ['a'] }]);
    // A message of any group went through after the failure: the session trouble was this message's own.
    judge.failure('7', 'b', CONNECTION_REFUSED);
    clock.now += 1;
    judge.success('8');
    expect(judge.settle('7')).toMatchObject([{ kind: 'individual', group: '7', failures: [{ item: 'b' }] }]);
  });

  it('settle: a session that hung while other messages went through is its recipient’s trouble, not an outage', () => {
    const { judge, clock } = judgeAt();
    const began = clock.now;
    clock.now += 500;
    judge.success('7');
    clock.now += 1_000;
    // Reported after the last success, but begun before it.
    judge.failure('7', 'slow', CONNECTION_REFUSED, began);
    expect(judge.settle('7')).toMatchObject([{ kind: 'individual', group: '7', failures: [{ item: 'slow' }] }]);
    // Begun after the last success: nothing went through since, an outage.
    judge.failure('7', 'dead', CONNECTION_REFUSED, clock.now);
    clock.now += 1_000;
    expect(judge.settle('7')).toMatchObject([{ kind: 'server', pause: 'outage', items: ['dead'] }]);
  });

  it('settle judges what a group held one by one, and nothing of other groups', () => {
    const { judge } = judgeAt();
    const a = greylisted('a@example.org');
    judge.failure('7', 'a', a);
    judge.failure('8', 'b', a);
    expect(judge.settle('7')).toEqual([{ kind: 'individual', group: '7', failures: [{ item: 'a', fault: a }] }]);
    expect(judge.settle('7')).toEqual([]);
    expect(judge.heldItems()).toEqual(['b']);
  });

  it('expire judges one by one only what has been held for maxHoldMs, in every group', () => {
    const { judge, clock } = judgeAt(1_000_000, { maxHoldMs: 60_000 });
    const old7 = unknownUser('old7@example.org');
    const old8 = TIMED_OUT;
    judge.failure('7', 'old7', old7);
    judge.failure('8', 'old8', old8);
    clock.now += 30_000;
    judge.failure('7', 'young7', greylisted('young7@example.org'));

    clock.now += 29_999;
    expect(judge.expire()).toEqual([]);

    clock.now += 2;
    expect(judge.expire()).toEqual([
      { kind: 'individual', group: '7', failures: [{ item: 'old7', fault: old7 }] },
      { kind: 'individual', group: '8', failures: [{ item: 'old8', fault: old8 }] },
    ]);
    expect(judge.heldItems()).toEqual(['young7']);

    clock.now += 30_000;
    expect(judge.expire()).toMatchObject([{ kind: 'individual', group: '7', failures: [{ item: 'young7' }] }]);
    expect(judge.heldItems()).toEqual([]);
  });

  it('holds for two minutes unless told otherwise', () => {
    const { judge, clock } = judgeAt(5_000);
    judge.failure('7', 'a', TIMED_OUT);
    clock.now += 119_999;
    expect(judge.expire()).toEqual([]);
    clock.now += 2;
    expect(judge.expire()).toMatchObject([{ kind: 'individual', group: '7', failures: [{ item: 'a' }] }]);
  });

  it('an expired failure no longer counts toward a streak', () => {
    const { judge, clock } = judgeAt(0, { maxHoldMs: 1_000 });
    const n = DEFAULT_STREAKS.unreachable;
    failMany(judge, '7', 'old', n - 1, () => TIMED_OUT);
    clock.now += 1_001;
    expect(judge.expire()).toHaveLength(1);
    expect(judge.failure('7', 'new', TIMED_OUT)).toEqual([]);
  });

  it('releaseAll gives every group\u2019s held items back undecided', () => {
    const { judge } = judgeAt();
    judge.failure('7', 'a1', unknownUser('a1@example.org'));
    judge.failure('7', 'a2', TIMED_OUT);
    judge.failure('8', 'b1', greylisted('b1@example.org'));
    expect(judge.releaseAll()).toEqual([
      { kind: 'release', group: '7', items: ['a1', 'a2'] },
      { kind: 'release', group: '8', items: ['b1'] },
    ]);
    expect(judge.heldItems()).toEqual([]);
    expect(judge.releaseAll()).toEqual([]);
  });

  it('every failed item comes out in exactly one verdict, in its own group, once everything is released', () => {
    const groups = ['7', '8', '9'];
    const faults = [
      CONNECTION_REFUSED,
      TIMED_OUT,
      REFUSED_RELAY,
      greylisted('x@example.org'),
      greylisted('y@example.org'),
      mailboxBusy('x@example.org'),
      unknownUser('x@example.org'),
      unknownUser('y@example.org'),
      mailboxFull('x@example.org'),
      transactionFailed('x@example.org'),
    ];
    const group = fc.constantFrom(...groups);
    const step = fc.oneof(
      { weight: 6, arbitrary: fc.record({ op: fc.constant('failure' as const), group, fault: fc.constantFrom(...faults) }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant('success' as const), group }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('settle' as const), group }) },
      { weight: 1, arbitrary: fc.record({ op: fc.constant('expire' as const), ms: fc.integer({ min: 0, max: 2_000 }) }) },
    );
    const streaks = fc.record({
      unreachable: fc.integer({ min: 1, max: 4 }),
      'recipient-temporary': fc.integer({ min: 1, max: 6 }),
      'recipient-permanent': fc.integer({ min: 1, max: 11 }),
      'unclear-permanent': fc.integer({ min: 1, max: 4 }),
    });

    fc.assert(
      fc.property(fc.array(step, { maxLength: 120 }), fc.option(streaks, { nil: undefined }), (steps, custom) => {
        const { judge, clock } = judgeAt(0, { maxHoldMs: 1_000, ...(custom ? { streaks: custom } : {}) });
        const groupOf = new Map<string, string>();
        const out: string[] = [];
        const take = (verdicts: Verdict<string>[]) => {
          for (const verdict of verdicts) {
            for (const item of itemsOf(verdict)) {
              expect(groupOf.get(item), `${item} came out of group ${verdict.group}`).toBe(verdict.group);
              out.push(item);
            }
          }
        };
        steps.forEach((s, i) => {
          if (s.op === 'failure') {
            const item = `item${i}`;
            groupOf.set(item, s.group);
            take(judge.failure(s.group, item, s.fault));
          } else if (s.op === 'success') take(judge.success(s.group));
          else if (s.op === 'settle') take(judge.settle(s.group));
          else {
            clock.now += s.ms;
            take(judge.expire());
          }
          // What is held is exactly what went in and has not come out.
          expect(new Set([...judge.heldItems(), ...out]).size).toBe(judge.heldItems().length + out.length);
          expect(judge.heldItems().length + out.length).toBe(groupOf.size);
        });
        take(judge.releaseAll());
        expect(judge.heldItems()).toEqual([]);
        expect(out.length).toBe(groupOf.size);
        expect([...out].sort()).toEqual([...groupOf.keys()].sort());
      }),
      { numRuns: 300 },
    );
  });
});

describe('streakKey', () => {
  const key = (kind: FaultKind, reply: string) => streakKey(new DeliveryFault(kind, `message for ${reply}`, { reply }));

  it('any dead connection is like any other', () => {
    expect(streakKey(CONNECTION_REFUSED)).toBe(streakKey(TIMED_OUT));
    expect(streakKey(CLOSING)).toBe(streakKey(TIMED_OUT));
  });

  it('replies that differ only in the recipient\u2019s address are alike, bracketed or bare', () => {
    expect(key('recipient-permanent', '550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown in local recipient table')).toBe(
      key('recipient-permanent', '550 5.1.1 <alice.smith+news@mail.example.com>: Recipient address rejected: User unknown in local recipient table'),
    );
    expect(key('unclear-permanent', "554 delivery error: dd This user doesn't have a yahoo.com account (bob@yahoo.com) [0]")).toBe(
      key('unclear-permanent', "554 delivery error: dd This user doesn't have a yahoo.com account (carol.jones@yahoo.com) [0]"),
    );
  });

  it('replies that differ only in a queue id are alike', () => {
    expect(key('recipient-temporary', '451 4.3.0 Temporary failure, please retry (queue id 3F2A1B9C8D)')).toBe(
      key('recipient-temporary', '451 4.3.0 Temporary failure, please retry (queue id 9C8D7E6F5A)'),
    );
  });

  it('replies that differ only in a number are alike', () => {
    expect(key('recipient-temporary', '450 4.7.1 Greylisted, please try again in 1800 seconds')).toBe(
      key('recipient-temporary', '450 4.7.1 Greylisted, please try again in 1799 seconds'),
    );
    expect(key('recipient-temporary', '451 4.7.500 Server busy. Please try again later from [52.4.1.9]. (S77714) ref 20240501101112')).toBe(
      key('recipient-temporary', '451 4.7.500 Server busy. Please try again later from [52.4.1.9]. (S77714) ref 20240501101957'),
    );
  });

  it('ignores case and runs of white space (multi-line replies)', () => {
    expect(key('recipient-temporary', '450-4.2.1 The user you are trying to contact\n450 4.2.1 is receiving mail too fast')).toBe(
      key('recipient-temporary', '450-4.2.1 THE USER you are   trying to contact 450 4.2.1 is receiving mail too fast'),
    );
  });

  it('different enhanced codes, reply codes or kinds are not alike', () => {
    expect(key('recipient-permanent', '550 5.1.1 <bob@example.org>: Recipient address rejected')).not.toBe(
      key('recipient-permanent', '550 5.1.2 <bob@example.org>: Recipient address rejected'),
    );
    expect(key('recipient-temporary', '451 4.7.1 Please try again later')).not.toBe(key('recipient-temporary', '451 4.7.0 Please try again later'));
    expect(key('recipient-permanent', '550 5.2.2 Mailbox full')).not.toBe(key('recipient-permanent', '552 5.2.2 Mailbox full'));
    expect(key('recipient-permanent', '554 Transaction failed')).not.toBe(key('unclear-permanent', '554 Transaction failed'));
  });

  it('different wording is not alike', () => {
    expect(key('recipient-temporary', '450 4.2.0 <bob@example.org>: Greylisted')).not.toBe(key('recipient-temporary', '450 4.2.0 <bob@example.org>: Mailbox busy'));
  });

  describe('per-message tags the big providers append', () => {
    it('Gmail replies that differ only in their trailing message id are alike', () => {
      const gmail = (id: string) =>
        key(
          'recipient-permanent',
          `552-5.2.3 Your message exceeded Google's message size limits. For more information, visit\n552 5.2.3  https://support.google.com/mail/?p=MaxSizeError ${id} - gsmtp`,
        );
      expect(gmail('x12-20020a05600c4b0c00b003fbd9e4d3c8si11052525wmp.178')).toBe(gmail('d4-20020a170902e14400b001b8b7d0f9a5si2749301plb.311'));
    });

    it('Microsoft 365 replies that differ only in their timestamp are alike', () => {
      const m365 = (at: string) =>
        key('recipient-temporary', `451 4.7.500 Server busy. Please try again later from [52.4.1.9]. (S77714) [CY4PEPF0000EE3C.namprd03.prod.outlook.com ${at} 08DBB45899852BA7]`);
      expect(m365('2023-09-18T12:48:32.808Z')).toBe(m365('2023-09-18T12:48:33.114Z'));
    });
  });
});
