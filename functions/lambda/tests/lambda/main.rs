//! The Lambda functions' handlers, called with real API Gateway v2, function-URL and SQS event
//! payloads against the AWS adapters on moto; and the queue's faults: a job failing on every
//! attempt ends failed in the dead-letter queue, and a Lambda killed mid-batch resumes without
//! redoing finished items; Client ID Metadata Documents accepted through the handler; and no
//! prompt in clear in any DynamoDB item.

mod canary;
mod cimd;
mod faults;
mod fixtures;
mod helpers;
mod retention;
