//! tiberius 0.13 against the protocol layer over TCP: login, queries, parameters of every type,
//! column types, errors, attention, cancellation and shutdown.

use std::time::Duration;

use pcfail_lab_tds::{Event, SqlType, Value};
use tiberius::numeric::Numeric;
use tiberius::time::{Date, DateTime, DateTime2, DateTimeOffset, Time};
use tiberius::xml::XmlData;
use tiberius::{ColumnData, Command, Uuid};

use crate::backend::{PASSWORD, SERVER_NAME, column, done, error};
use crate::{Server, first_row, within};

fn server_error(e: tiberius::error::Error) -> tiberius::error::TokenError {
    match e {
        tiberius::error::Error::Server(t) => t,
        other => panic!("expected a server error, got {other:?}"),
    }
}

#[tokio::test]
async fn login_succeeds_and_simple_query_returns_the_row() {
    let server = Server::start().await;
    let mut client = within("login", server.connect()).await;
    let row = first_row(&mut client, "SELECT 1").await.unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(1));
    assert_eq!(server.backend.transcript(), vec!["batch SELECT 1"]);
}

#[tokio::test]
async fn bad_password_is_server_error_18456_class_14() {
    let server = Server::start().await;
    let err = within("login", server.connect_as("sa", "wrong"))
        .await
        .expect_err("login must fail");
    let token = server_error(err);
    assert_eq!((token.code(), token.class(), token.state()), (18456, 14, 1));
    assert_eq!(token.message(), "Login failed for user 'sa'.");
    assert_eq!(token.server(), SERVER_NAME);
}

#[tokio::test]
async fn rpc_parameters_of_every_type_arrive_decoded_and_echo_back() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let long = "é".repeat(3000); // 6000 UTF-8 bytes: tiberius sends nvarchar(max) as PLP
    let guid = Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap();
    let lsn = Numeric::new_with_scale(525_004_585_597_800_001, 0);
    let xml = XmlData::new("<a>1</a>");
    let dt = ColumnData::DateTime(Some(DateTime::new(45_000, 300)));
    let date = ColumnData::Date(Some(Date::new(738_000)));
    let time = ColumnData::Time(Some(Time::new(123_456_789, 7)));
    let dt2 = ColumnData::DateTime2(Some(DateTime2::new(Date::new(738_000), Time::new(5, 3))));
    let dto = ColumnData::DateTimeOffset(Some(DateTimeOffset::new(
        DateTime2::new(Date::new(1), Time::new(9, 0)),
        -300,
    )));
    let rows = client
        .query(
            "ECHO PARAMS",
            &[
                &7u8,
                &-2i16,
                &42i32,
                &-5i64,
                &true,
                &1.5f32,
                &2.25f64,
                &"short",
                &long.as_str(),
                &Option::<i32>::None,
                &vec![1u8, 2, 3],
                &guid,
                &lsn,
                &xml,
                &dt,
                &date,
                &time,
                &dt2,
                &dto,
            ],
        )
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    let row = &rows[0];
    assert_eq!(row.get::<u8, _>(0), Some(7));
    assert_eq!(row.get::<i16, _>(1), Some(-2));
    assert_eq!(row.get::<i32, _>(2), Some(42));
    assert_eq!(row.get::<i64, _>(3), Some(-5));
    assert_eq!(row.get::<bool, _>(4), Some(true));
    assert_eq!(row.get::<f32, _>(5), Some(1.5));
    assert_eq!(row.get::<f64, _>(6), Some(2.25));
    assert_eq!(row.get::<&str, _>(7), Some("short"));
    assert_eq!(row.get::<&str, _>(8), Some(long.as_str()));
    assert_eq!(row.get::<i32, _>(9), None);
    assert_eq!(row.get::<&[u8], _>(10), Some(&[1u8, 2, 3][..]));
    assert_eq!(row.get::<Uuid, _>(11), Some(guid));
    assert_eq!(row.get::<Numeric, _>(12), Some(lsn));
    assert_eq!(
        row.get::<&XmlData, _>(13).map(|x| x.to_string()),
        Some("<a>1</a>".to_owned())
    );
    let cell = |i: usize| row.get::<ColumnData<'_>, _>(i).unwrap();
    assert_eq!(cell(14), dt);
    assert_eq!(cell(15), date);
    assert_eq!(cell(16), time);
    assert_eq!(cell(17), dt2);
    assert_eq!(cell(18), dto);
    let names: Vec<_> = row.columns().iter().map(|c| c.name().to_owned()).collect();
    assert_eq!(names[0], "@P1");
    assert_eq!(server.backend.transcript(), vec!["rpc #10"]);
}

#[tokio::test]
async fn every_encoded_column_type_reads_back_through_row_get() {
    let backend = crate::backend::TestBackend::new();
    let guid_wire: [u8; 16] = [
        0xFF, 0x19, 0x96, 0x6F, 0x86, 0x8B, 0x11, 0xD0, 0xB4, 0x2D, 0x00, 0xC0, 0x4F, 0xC9, 0x64,
        0xFF,
    ];
    let cols = vec![
        column("tiny", SqlType::TinyInt, false),
        column("small", SqlType::SmallInt, true),
        column("int_nn", SqlType::Int, false),
        column("int_n", SqlType::Int, true),
        column("big_nn", SqlType::BigInt, false),
        column("big_n", SqlType::BigInt, true),
        column("bit_nn", SqlType::Bit, false),
        column("bit_n", SqlType::Bit, true),
        column("float", SqlType::Float, true),
        column("name", SqlType::NVarChar(128), false),
        column("state_desc", SqlType::NVarChar(60), true),
        column("big_text", SqlType::NVarCharMax, true),
        column("vc", SqlType::VarChar(20), true),
        column("ch", SqlType::Char(5), true),
        column(
            "lsn",
            SqlType::Numeric {
                precision: 25,
                scale: 0,
            },
            true,
        ),
        column(
            "money_like",
            SqlType::Numeric {
                precision: 19,
                scale: 4,
            },
            true,
        ),
        column("when", SqlType::DateTime, true),
        column("when_nn", SqlType::DateTime, false),
        column("guid", SqlType::UniqueIdentifier, true),
        column("bin", SqlType::VarBinary(16), true),
        column("status", SqlType::Variant, true),
        column("level", SqlType::Variant, true),
        column("null_variant", SqlType::Variant, true),
        column("null_text", SqlType::NVarChar(10), true),
        column("small_when", SqlType::SmallDateTime, true),
        column("vc_max", SqlType::VarCharMax, true),
        column("bin_max", SqlType::VarBinaryMax, true),
        column("real", SqlType::Real, false),
        column("lsn_variant", SqlType::Variant, true),
        column("guid_variant", SqlType::Variant, true),
        column("when_variant", SqlType::Variant, true),
        column("d", SqlType::Date, true),
        column("dt2", SqlType::DateTime2(7), false),
        column("doc", SqlType::Xml, true),
    ];
    let values = vec![
        Value::Int(255),
        Value::Int(-300),
        Value::Int(i64::from(i32::MIN)),
        Value::Int(12),
        Value::Int(i64::MAX),
        Value::Null,
        Value::Bit(true),
        Value::Int(0),
        Value::Float(-0.5),
        Value::String("mgc".into()),
        Value::String("RESTORING".into()),
        Value::String("x".repeat(5000)),
        Value::String("Grüße €".into()),
        Value::String("ab".into()),
        Value::Numeric(525_004_585_597_800_001, 0),
        Value::Numeric(-123_456, 4),
        Value::DateTime {
            days: 45_000,
            ticks: 300,
        },
        Value::DateTime { days: 0, ticks: 0 },
        Value::Guid(guid_wire),
        Value::Binary(vec![0xDE, 0xAD]),
        Value::Variant(Box::new((
            SqlType::NVarChar(128),
            Value::String("ONLINE".into()),
        ))),
        Value::Variant(Box::new((SqlType::Int, Value::Int(160)))),
        Value::Null,
        Value::Null,
        Value::DateTime {
            days: 40_000,
            ticks: 18_000 * 61,
        },
        Value::String("v".repeat(9000)),
        Value::Binary(vec![7; 9000]),
        Value::Float(0.25),
        Value::Variant(Box::new((
            SqlType::Numeric {
                precision: 25,
                scale: 0,
            },
            Value::Numeric(42, 0),
        ))),
        Value::Variant(Box::new((
            SqlType::UniqueIdentifier,
            Value::Guid(guid_wire),
        ))),
        Value::Variant(Box::new((
            SqlType::DateTime,
            Value::DateTime { days: 3, ticks: 4 },
        ))),
        Value::Date(738_000),
        Value::DateTime2 {
            days: 738_000,
            increments: 15,
            scale: 1,
        },
        Value::String("<r/>".into()),
    ];
    backend.script(
        "SELECT TYPES",
        vec![
            Event::Rows {
                columns: cols,
                rows: vec![values],
            },
            done(Some(1), false),
        ],
    );
    let server = Server::start_with(backend).await;
    let mut client = server.connect().await;
    let row = first_row(&mut client, "SELECT TYPES").await.unwrap();
    assert_eq!(row.get::<u8, _>("tiny"), Some(255));
    assert_eq!(row.get::<i16, _>("small"), Some(-300));
    assert_eq!(row.get::<i32, _>("int_nn"), Some(i32::MIN));
    assert_eq!(row.get::<i32, _>("int_n"), Some(12));
    assert_eq!(row.get::<i64, _>("big_nn"), Some(i64::MAX));
    assert_eq!(row.get::<i64, _>("big_n"), None);
    assert_eq!(row.get::<bool, _>("bit_nn"), Some(true));
    assert_eq!(row.get::<bool, _>("bit_n"), Some(false));
    assert_eq!(row.get::<f64, _>("float"), Some(-0.5));
    assert_eq!(row.get::<&str, _>("name"), Some("mgc"));
    assert_eq!(row.get::<&str, _>("state_desc"), Some("RESTORING"));
    assert_eq!(row.get::<&str, _>("big_text").map(str::len), Some(5000));
    assert_eq!(row.get::<&str, _>("vc"), Some("Grüße €"));
    assert_eq!(row.get::<&str, _>("ch"), Some("ab   "));
    assert_eq!(
        row.get::<Numeric, _>("lsn"),
        Some(Numeric::new_with_scale(525_004_585_597_800_001, 0))
    );
    assert_eq!(
        row.get::<Numeric, _>("money_like"),
        Some(Numeric::new_with_scale(-123_456, 4))
    );
    assert_eq!(
        row.get::<ColumnData<'_>, _>("when"),
        Some(ColumnData::DateTime(Some(DateTime::new(45_000, 300))))
    );
    assert_eq!(
        row.get::<ColumnData<'_>, _>("when_nn"),
        Some(ColumnData::DateTime(Some(DateTime::new(0, 0))))
    );
    assert_eq!(
        row.get::<Uuid, _>("guid"),
        Some(Uuid::parse_str("6f9619ff-8b86-d011-b42d-00c04fc964ff").unwrap())
    );
    assert_eq!(row.get::<&[u8], _>("bin"), Some(&[0xDE, 0xAD][..]));
    assert_eq!(row.get::<&str, _>("status"), Some("ONLINE"));
    assert_eq!(row.get::<i32, _>("level"), Some(160));
    assert_eq!(row.get::<&str, _>("null_variant"), None);
    assert_eq!(row.get::<&str, _>("null_text"), None);
    assert_eq!(
        row.get::<ColumnData<'_>, _>("small_when"),
        Some(ColumnData::SmallDateTime(Some(
            tiberius::time::SmallDateTime::new(40_000, 61)
        )))
    );
    assert_eq!(row.get::<&str, _>("vc_max").map(str::len), Some(9000));
    assert_eq!(row.get::<&[u8], _>("bin_max").map(<[u8]>::len), Some(9000));
    assert_eq!(row.get::<f32, _>("real"), Some(0.25));
    assert_eq!(
        row.get::<Numeric, _>("lsn_variant"),
        Some(Numeric::new_with_scale(42, 0))
    );
    assert_eq!(
        row.get::<Uuid, _>("guid_variant"),
        row.get::<Uuid, _>("guid")
    );
    assert_eq!(
        row.get::<ColumnData<'_>, _>("when_variant"),
        Some(ColumnData::DateTime(Some(DateTime::new(3, 4))))
    );
    assert_eq!(
        row.get::<ColumnData<'_>, _>("d"),
        Some(ColumnData::Date(Some(Date::new(738_000))))
    );
    assert_eq!(
        row.get::<ColumnData<'_>, _>("dt2"),
        Some(ColumnData::DateTime2(Some(DateTime2::new(
            Date::new(738_000),
            Time::new(15_000_000, 7)
        ))))
    );
    assert_eq!(
        row.get::<&XmlData, _>("doc").map(|x| x.to_string()),
        Some("<r/>".to_owned())
    );
}

#[tokio::test]
async fn an_error_event_is_server_error_with_its_number_class_and_state_and_the_connection_stays_usable()
 {
    let backend = crate::backend::TestBackend::new();
    backend.script(
        "RESTORE LOG mgc",
        vec![
            error(4305, 16, 1, "The log in this backup set begins at LSN 525004585597800001, which is too recent to apply to the database."),
            error(3013, 16, 1, "RESTORE LOG is terminating abnormally."),
            done(None, true),
        ],
    );
    let server = Server::start_with(backend).await;
    let mut client = server.connect().await;
    for via_rpc in [false, true] {
        let result = if via_rpc {
            client.execute("RESTORE LOG mgc", &[]).await.map(|_| ())
        } else {
            match client.simple_query("RESTORE LOG mgc").await {
                Ok(stream) => stream.into_results().await.map(|_| ()),
                Err(e) => Err(e),
            }
        };
        // tiberius keeps only the first ERROR of a response: the specific one, not 3013.
        let token = server_error(result.expect_err("must fail"));
        assert_eq!(
            (token.code(), token.class(), token.state()),
            (4305, 16, 1),
            "via_rpc={via_rpc}"
        );
        assert!(token.message().starts_with("The log in this backup set"));
        assert_eq!(token.server(), SERVER_NAME);
        let row = first_row(&mut client, "SELECT 1").await.unwrap();
        assert_eq!(
            row.get::<i32, _>(0),
            Some(1),
            "connection usable after the error (via_rpc={via_rpc})"
        );
    }
}

#[tokio::test]
async fn an_error_after_a_result_set_ends_the_row_stream_with_that_error() {
    let backend = crate::backend::TestBackend::new();
    backend.script(
        "PARTIAL",
        vec![
            Event::Rows { columns: vec![column("n", SqlType::Int, true)], rows: vec![vec![Value::Int(1)]] },
            error(1205, 13, 51, "Transaction (Process ID 53) was deadlocked on lock resources with another process and has been chosen as the deadlock victim. Rerun the transaction."),
            done(Some(1), true),
        ],
    );
    let server = Server::start_with(backend).await;
    let mut client = server.connect().await;
    let err = client
        .simple_query("PARTIAL")
        .await
        .unwrap()
        .into_results()
        .await
        .expect_err("error at the end");
    assert_eq!(server_error(err).code(), 1205);
    assert!(first_row(&mut client, "SELECT 1").await.is_some());
}

#[tokio::test]
async fn a_multi_statement_batch_returns_several_result_sets() {
    let backend = crate::backend::TestBackend::new();
    let set = |name: &str, n: i64| Event::Rows {
        columns: vec![column(name, SqlType::BigInt, false)],
        rows: (0..n).map(|i| vec![Value::Int(i)]).collect(),
    };
    backend.script(
        "THREE SETS",
        vec![
            set("a", 2),
            done(Some(2), false),
            done(Some(5), false),
            set("b", 0),
            done(Some(0), false),
            set("c", 3),
            done(Some(3), false),
        ],
    );
    let server = Server::start_with(backend).await;
    let mut client = server.connect().await;
    let results = client
        .simple_query("THREE SETS")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let sizes: Vec<usize> = results.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![2, 0, 3]);
    assert_eq!(results[2][2].get::<i64, _>("c"), Some(2));
    let counts = client.execute("THREE SETS", &[]).await.unwrap();
    assert_eq!(counts.rows_affected(), &[2, 5, 0, 3]);
}

#[tokio::test]
async fn a_request_larger_than_one_packet_arrives_whole() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let text: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let row = first_row(&mut client, &format!("ECHO {text}"))
        .await
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some(text.as_str()));
    let row = client
        .query(format!("ECHO {text}"), &[])
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some(text.as_str()));
}

#[tokio::test]
async fn a_stored_procedure_by_name_returns_status_and_output_values() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let mut cmd = Command::new("echo_proc");
    cmd.bind_param("@in", 1i32);
    cmd.bind_out_param("@out", 41i32);
    let result = cmd
        .exec(&mut client)
        .await
        .unwrap()
        .into_command_result()
        .await
        .unwrap();
    assert_eq!(result.return_code(), 7);
    assert_eq!(result.try_return_value::<i32>("@out").unwrap(), Some(41));
    assert_eq!(server.backend.transcript(), vec!["rpc echo_proc"]);
}

#[tokio::test]
async fn transaction_manager_requests_are_acknowledged() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    client.begin_transaction().await.unwrap();
    first_row(&mut client, "SELECT 1").await;
    client.commit_transaction().await.unwrap();
    client.begin_transaction().await.unwrap();
    client.rollback_transaction().await.unwrap();
    assert!(first_row(&mut client, "SELECT 1").await.is_some());
}

#[tokio::test]
async fn attention_drops_the_running_request_and_the_connection_stays_usable() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    // The request is sent, then the client gives up waiting and cancels it.
    let finished = tokio::time::timeout(
        Duration::from_millis(200),
        client.simple_query("WAITFOR FOREVER"),
    )
    .await
    .is_ok();
    assert!(!finished, "WAITFOR FOREVER must not finish");
    within("cancel", client.cancel_query()).await.unwrap();
    let row = within("query after cancel", client.simple_query("SELECT 1"))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(1));
    assert_eq!(
        server.backend.transcript(),
        vec!["batch WAITFOR FOREVER", "dropped", "batch SELECT 1"]
    );
}

#[tokio::test]
async fn cancelling_the_session_token_closes_the_connection_even_mid_request() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let token = server.backend.sessions.lock().unwrap()[0].1.clone();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
    });
    let started = std::time::Instant::now();
    let result = within(
        "query on a killed session",
        client.simple_query("WAITFOR FOREVER"),
    )
    .await;
    assert!(
        result.is_err(),
        "the query must fail when the session is killed"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed promptly, not by the command timeout"
    );
    killer.await.unwrap();
    // The server also released the session.
    within("session close", async {
        while !server
            .backend
            .transcript()
            .contains(&"closed 51".to_owned())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_disconnect_event_closes_the_socket_without_an_answer() {
    let server = Server::start().await;
    let mut client = server.connect().await;
    let result = within(
        "query answered by a disconnect",
        client.simple_query("DISCONNECT"),
    )
    .await;
    assert!(result.is_err());
    // Other clients are unaffected.
    let mut other = server.connect().await;
    assert!(first_row(&mut other, "SELECT 1").await.is_some());
}

#[tokio::test]
async fn shutdown_closes_the_listener_and_every_connection() {
    let server = Server::start().await;
    let mut idle = server.connect().await;
    let mut busy = server.connect().await;
    let busy_query =
        tokio::spawn(async move { busy.simple_query("WAITFOR FOREVER").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.shutdown.cancel();
    within("run() to return", server.task).await.unwrap();
    assert!(within("busy query", busy_query).await.unwrap().is_err());
    assert!(
        within("idle query", idle.simple_query("SELECT 1"))
            .await
            .is_err()
    );
    assert!(
        tokio::net::TcpStream::connect(server.addr).await.is_err(),
        "listener closed"
    );
    let _ = PASSWORD;
}
