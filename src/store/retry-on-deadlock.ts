/**
 * Runs a transaction again when Postgres broke a deadlock by aborting it (40P01): two workers whose
 * claims overlap (a job handed out twice under load) may lock the same deliveries in another order.
 * The aborted transaction wrote nothing, so running it again is safe.
 */
export async function retryOnDeadlock<T>(run: () => Promise<T>, attempts = 5): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 5 * attempt + Math.random() * 20));
    }
  }
}

