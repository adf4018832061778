//! The demo's SQLite database: an `orders` table whose number of pending orders the demo moves
//! (new orders arrive, old ones ship), so the SQL check measures a real, changing count.

use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, SqliteConnection};

pub struct OrdersDb {
    path: PathBuf,
    conn: SqliteConnection,
}

impl OrdersDb {
    /// Creates the database file at `path` with an empty `orders` table.
    pub async fn create(path: &Path) -> Result<OrdersDb, sqlx::Error> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS orders (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                status TEXT NOT NULL CHECK (status IN ('pending', 'shipped')),
                created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
            )",
        )
        .execute(&mut conn)
        .await?;
        Ok(OrdersDb {
            path: path.to_path_buf(),
            conn,
        })
    }

    /// The URL a rule file uses for this database.
    pub fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    pub async fn pending(&mut self) -> Result<u64, sqlx::Error> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'pending'")
            .fetch_one(&mut self.conn)
            .await?;
        Ok(n.max(0) as u64)
    }

    /// Makes exactly `target` orders pending: new orders arrive when there are too few, the
    /// oldest ones ship when there are too many.
    pub async fn set_pending(&mut self, target: u64) -> Result<(), sqlx::Error> {
        let current = self.pending().await?;
        let mut tx = self.conn.begin().await?;
        if target > current {
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
                 INSERT INTO orders (status) SELECT 'pending' FROM n",
            )
            .bind((target - current) as i64)
            .execute(&mut *tx)
            .await?;
        } else if target < current {
            sqlx::query(
                "UPDATE orders SET status = 'shipped' WHERE id IN
                   (SELECT id FROM orders WHERE status = 'pending' ORDER BY id LIMIT ?)",
            )
            .bind((current - target) as i64)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pending_orders_follow_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = OrdersDb::create(&dir.path().join("orders.db"))
            .await
            .unwrap();
        assert_eq!(db.pending().await.unwrap(), 0);
        db.set_pending(40).await.unwrap();
        assert_eq!(db.pending().await.unwrap(), 40);
        db.set_pending(35).await.unwrap();
        assert_eq!(db.pending().await.unwrap(), 35);
        db.set_pending(400).await.unwrap();
        assert_eq!(db.pending().await.unwrap(), 400);
        let shipped: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'shipped'")
                .fetch_one(&mut db.conn)
                .await
                .unwrap();
        assert_eq!(
            shipped, 5,
            "shipping marks the oldest pending orders, it deletes nothing"
        );
        assert!(db.url().starts_with("sqlite:///"), "{}", db.url());
    }
}
