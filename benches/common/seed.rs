//! Seeding shared by the benches: devices, their vendor, and approved windows.

use sqlx::SqliteConnection;

/// Inserts `devices` devices (`d{n}`, named `device-{n}`), each assigned to
/// vendor `v{n % vendors}` (which must exist), and `windows_per_device` approved
/// windows of 4 hours each, the `w`-th starting at `start_of(w)` (µs since the
/// epoch). `now` dates the rows.
pub async fn devices_and_windows(
    conn: &mut SqliteConnection,
    now: i64,
    devices: usize,
    vendors: usize,
    windows_per_device: usize,
    start_of: impl Fn(usize) -> i64,
) {
    let hour = 3_600_000_000i64;
    for d in 0..devices {
        let v = d % vendors;
        sqlx::query("INSERT INTO devices (id, name, address, protocol, enabled, created_at) VALUES (?, ?, '127.0.0.1:9', 'ssh', 1, ?)")
            .bind(format!("d{d}"))
            .bind(format!("device-{d}"))
            .bind(now)
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("INSERT INTO device_vendors (device_id, vendor_id) VALUES (?, ?)")
            .bind(format!("d{d}"))
            .bind(format!("v{v}"))
            .execute(&mut *conn)
            .await
            .unwrap();
        for w in 0..windows_per_device {
            let start = start_of(w);
            let id = format!("w{d}-{w}");
            sqlx::query(
                "INSERT INTO windows (id, vendor_id, starts_at, ends_at, state, reason, requested_by, approved_by, created_at)
                 VALUES (?, ?, ?, ?, 'approved', 'bench', 'u1', 'u2', ?)",
            )
            .bind(&id)
            .bind(format!("v{v}"))
            .bind(start)
            .bind(start + 4 * hour)
            .bind(now)
            .execute(&mut *conn)
            .await
            .unwrap();
            sqlx::query("INSERT INTO window_devices (window_id, device_id) VALUES (?, ?)")
                .bind(&id)
                .bind(format!("d{d}"))
                .execute(&mut *conn)
                .await
                .unwrap();
        }
    }
}
